// Starts Swagger UI on /docs (kept out of the page: the CSP allows no inline script). The API key
// typed into a DigitFlow page (sessionStorage, this tab only) is sent with "Try it out".
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    validatorUrl: null,  // the public validator badge would call out of an air-gapped network
    requestInterceptor: function (request) {
      var key = window.sessionStorage.getItem("digitflow-api-key");
      if (key && !request.headers.Authorization) {
        request.headers.Authorization = "Bearer " + key;
      }
      return request;
    },
  });
})();
