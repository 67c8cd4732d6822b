"""POST /predict-drawing served straight from ASGI, past FastAPI's routing.

The canvas route is the one the platform must answer ~1,000 times a second on two cores, where a
request's whole CPU budget is ~1.5 ms. FastAPI's inner layers (exception middleware, exit
stack, route matching over every route, the request/response wrapper, dependency solving) cost
~0.1-0.2 ms of it for a route that uses none of them. This middleware sits inside the
platform's own (hardening, metrics, CORS), so a canvas request is checked, limited, counted and
answered exactly as through the route: it calls the same route function, and a refusal goes
through the same exception handler the app has registered for it. The FastAPI route stays, for
the OpenAPI document and as the path of every other method.
"""

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.predict.router import predict_drawing, router

FAST_PATH = "/predict-drawing"


class FastDrawing:
    def __init__(self, app: ASGIApp):
        self.app = app
        # The FastAPI route: what the metrics label a request with (its path template).
        self._route = next(route for route in router.routes if route.path == FAST_PATH)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != FAST_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        fastapi_app = scope["app"]
        scope["route"] = self._route
        request = Request(scope, receive)
        try:
            response = await predict_drawing(request)
        except Exception as exc:
            handler = _handler(fastapi_app.exception_handlers, exc)
            if handler is None:  # a bug: the server-error middleware answers 500 and logs it
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)


def _handler(handlers: dict, exc: Exception):
    """The app's handler for this exception's class (the most specific), as FastAPI's exception
    middleware would pick it; None for a plain Exception, which is left to the 500 handler."""
    for kind in type(exc).__mro__:
        if kind is Exception:
            return None
        if kind in handlers:
            return handlers[kind]
    return None
