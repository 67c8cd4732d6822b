"""Whole cheques and document types through the real API app (TestClient, real model)."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from digitflow.db.migrations import upgrade
from tests.api.conftest import make_client
from training.cheques import TEMPLATES, ChequeSpec


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("var")
    upgrade(f"sqlite:///{data_dir / 'digitflow.db'}")  # keys (admin checks) live in the database
    with make_client(data_dir=data_dir, document_types_dir=data_dir / "types") as client:
        yield client


def predict(client, data: bytes, layout: str, name: str = "cheque.jpg"):
    return client.post(f"/predict?layout={layout}", files={"file": (name, data, "image/jpeg")})


def test_cheque_answers_the_amount_with_its_box(client, cheques):
    exact = 0
    for cheque in cheques[:15]:
        response = predict(client, cheque.image, "cheque")
        assert response.status_code == 200, response.text
        body = response.json()
        amount = body["fields"]["amount"]
        assert body["layout"] == "cheque" and body["text"] == amount["text"]
        assert set(amount) >= {"text", "digits", "confidence", "needs_review", "review_reasons",
                               "box"}  # fmt: skip
        assert amount["box"] is not None and body["page"]["width"] > amount["box"]["x"]
        for digit in amount["digits"]:  # digit boxes are on the page, inside the amount box
            assert digit["box"]["x"] >= amount["box"]["x"] - 2
            assert digit["box"]["x"] <= amount["box"]["x"] + amount["box"]["width"]
        exact += amount["text"] == cheque.amount
    assert exact >= 12  # of 15


def test_layout_in_the_form_field_and_unknown_layouts(client, cheques):
    response = client.post(
        "/predict", files={"file": ("c.jpg", cheques[0].image, "image/jpeg")},
        data={"layout": "cheque"},
    )  # fmt: skip
    assert response.status_code == 200 and "fields" in response.json()
    response = predict(client, cheques[0].image, "no_such_form")
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert "no_such_form" in response.json()["detail"]


def test_cheque_layout_refuses_bad_images(client):
    response = predict(client, b"not an image at all", "cheque")
    assert response.status_code == 400 and response.json()["code"] == "undecodable_image"


ACCOUNT_FORM = {
    "description": "a slip with a 6-digit account number and a one-digit branch",
    "fields": [
        {"name": "account", "kind": "digits", "region": [0.40, 0.20, 0.55, 0.30]},
        {"name": "branch", "kind": "digit", "region": [0.05, 0.20, 0.15, 0.30]},
    ],
}


def form_page(mnist, account: list[int], branch: int) -> bytes:
    """A 1000x400 slip with digits written in the two regions of ACCOUNT_FORM."""
    page = np.full((400, 1000), 240, np.uint8)
    labels = mnist.y_test

    def write(digit: int, x: int, y: int) -> None:
        image = mnist.x_test[int(np.flatnonzero(labels == digit)[0])]
        ink = np.asarray(Image.fromarray(image).resize((56, 56)), np.float32) / 255.0
        region = page[y : y + 56, x : x + 56]
        region[:] = np.minimum(region, (240 * (1 - ink) + 20 * ink).astype(np.uint8))

    for i, digit in enumerate(account):
        write(digit, 430 + i * 70, 110)
    write(branch, 90, 110)
    out = io.BytesIO()
    Image.fromarray(page).save(out, "PNG")
    return out.getvalue()


def test_register_and_read_a_document_type(client, mnist):
    response = client.put("/document-types/account_slip", json=ACCOUNT_FORM)
    assert response.status_code == 201, response.text
    assert client.put("/document-types/account_slip", json=ACCOUNT_FORM).status_code == 200
    names = [t["name"] for t in client.get("/document-types").json()["items"]]
    assert names == ["account_slip", "cheque"]

    response = predict(client, form_page(mnist, [3, 1, 4, 1, 5, 9], 7), "account_slip")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body["fields"]) == {"account", "branch"}
    assert body["fields"]["account"]["text"] == "314159"
    assert body["fields"]["branch"]["text"] == "7"
    assert body["text"] == "314159"  # the primary field: the first one unless named
    assert body["fields"]["branch"]["box"] == {"x": 50, "y": 80, "width": 150, "height": 120}


@pytest.mark.parametrize(
    "definition, fragment",
    [
        ({"fields": []}, "fields"),
        ({"fields": [{"name": "a", "kind": "digits", "region": [0.5, 0.5, 0.6, 0.1]}]}, "page"),
        ({"fields": [{"name": "a", "kind": "words", "region": [0, 0, 1, 1]}]}, "kind"),
        ({"fields": [{"name": "A!", "kind": "digits", "region": [0, 0, 1, 1]}]}, "name"),
        ({"name": "other", "fields": [{"name": "a", "region": [0, 0, 1, 1]}]}, "path"),
    ],
)
def test_bad_definitions_are_422_with_the_reason(client, definition, fragment):
    response = client.put("/document-types/bad_one", json=definition)
    assert response.status_code == 422
    assert fragment in response.json()["detail"]
    assert client.get("/document-types/bad_one").status_code == 404


def test_cheque_is_built_in(client):
    response = client.put("/document-types/cheque", json=ACCOUNT_FORM)
    assert response.status_code == 409 and response.json()["code"] == "builtin_document_type"
    cheque = client.get("/document-types/cheque").json()
    assert cheque["builtin"] and cheque["fields"][0]["locate"] == "courtesy_amount"


def test_definition_files_in_the_folder(client, tmp_path_factory):
    folder = client.app.state.document_types.folder
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tax_form.yaml").write_text(
        "name: tax_form\nfields:\n  - name: year\n    kind: digits\n"
        "    region: [0.1, 0.1, 0.3, 0.2]\n"
    )
    (folder / "broken.json").write_text(json.dumps({"name": "broken"}))
    names = [t["name"] for t in client.get("/document-types").json()["items"]]
    assert "tax_form" in names and "broken" not in names


def test_admin_role_is_required(client):
    from api.auth import dependencies
    from digitflow.auth import Principal, Role

    def submitter():
        return Principal(tenant_id="t1", role=Role.submitter)

    client.app.dependency_overrides[dependencies.current_principal] = submitter
    try:
        response = client.put("/document-types/slip_two", json=ACCOUNT_FORM)
    finally:
        client.app.dependency_overrides.clear()
    assert response.status_code == 403 and response.json()["code"] == "forbidden"


def test_spec_fixture_is_varied():
    assert {t.amount_kind for t in TEMPLATES} == {"box", "underline"}
    assert ChequeSpec(TEMPLATES[0], 200, "$", "us").jpeg_quality == 85
