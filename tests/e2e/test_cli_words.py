"""The command line in people's words (issue 13, items 7 and 10), with real node
processes: regions typed as people type them, the dashboard password read from
a file, and invite refusals that say what happened."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from node.cli.client import ApiError
from node.devmesh import LocalNode

pytestmark = pytest.mark.slow

SEND = ("alert", "send", "--severity", "severe", "--headline", "Desalojo violento en curso")


def in_language(node: LocalNode, lang: str, *args: str) -> Any:
    node.env["LANG"], node.env["LANGUAGE"] = lang, ""
    try:
        return node.amparo(*args, check=False)
    finally:
        del node.env["LANG"], node.env["LANGUAGE"]


def test_regions_are_taken_as_people_type_them(mesh_factory: Any) -> None:
    (a,) = mesh_factory(1, watch_regions=["MX-CHP"]).nodes
    sent = in_language(a, "en_US.UTF-8", *SEND, "--region", "oaxaca", "--region", "mx-chp")
    assert sent.returncode == 0, sent.stderr
    assert "region oaxaca → MX-OAX (Oaxaca, Mexico)" in sent.stderr
    assert "mx-chp" not in sent.stderr  # a code in other letters is simply taken
    shown = json.loads(a.amparo("alert", "show", sent.stdout.strip(), "--json").stdout)
    assert shown["regions"] == ["MX-OAX", "MX-CHP"]

    spanish = in_language(a, "es_MX.UTF-8", *SEND, "--region", "Estado de México", "--json")
    assert spanish.returncode == 0 and spanish.stderr == ""  # --json: the resolution is in the output
    assert json.loads(spanish.stdout)["resolved"] == [
        {"typed": "Estado de México", "code": "MX-MEX", "how": "name", "name": "México, Mexico"}
    ]
    told = in_language(a, "es_MX.UTF-8", "alert", "list", "--region", "Oaxaca")
    assert "región Oaxaca → MX-OAX (Oaxaca, México)" in told.stderr
    assert "Desalojo violento" in told.stdout and "MX-MEX" not in told.stdout

    typo = in_language(a, "es_MX.UTF-8", *SEND, "--region", "Oaxka")
    assert typo.returncode == 1 and "Traceback" not in typo.stderr
    assert "región desconocida 'Oaxka': ¿quisiste decir MX-OAX (Oaxaca, México)?" in typo.stderr
    shared = in_language(a, "en_US.UTF-8", *SEND, "--region", "Santa Cruz")
    assert shared.returncode == 1 and "'Santa Cruz' names more than one region" in shared.stderr
    assert "AR-Z" in shared.stderr and "areas" not in shared.stderr
    by_api = a.api.post("/api/v1/alerts", {"regions": ["mx-yuc", "Campeche"], "headline": "Retén ilegal"})
    assert json.loads(a.amparo("alert", "show", by_api["id"], "--json").stdout)["regions"] == [
        "MX-YUC",
        "MX-CAM",
    ]
    for typed in ("mx-cam", "Campeche"):  # the local API's filter takes regions as people type them too
        assert [x["headline"] for x in a.api.get("/api/v1/alerts", region=typed)["alerts"]] == [
            "Retén ilegal"
        ]
    with pytest.raises(ApiError, match="unknown region 'Campeshe': did you mean MX-CAM") as refused:
        a.api.get("/api/v1/alerts", region="Campeshe")
    assert refused.value.code == "invalid-input"


def test_a_dashboard_password_comes_from_a_file_never_argv(mesh_factory: Any, tmp_path: Path) -> None:
    (a,) = mesh_factory(1).nodes
    good = tmp_path / "clave.txt"
    good.write_text("una clave bastante larga\n", "utf-8")
    added = a.amparo("responder", "add", "Lucía Méndez", "--password-file", str(good), "--json")
    assert json.loads(added.stdout)["has_password"] is True
    listed = json.loads(a.amparo("responder", "list", "--json").stdout)["responders"]
    assert [r["name"] for r in listed] == ["Lucía Méndez"]

    empty = tmp_path / "vacía.txt"
    empty.write_text("\n", "utf-8")
    for path, words in [(empty, "is empty"), (tmp_path / "no-existe.txt", "cannot read the password file")]:
        refused = a.amparo("responder", "add", "Otra Persona", "--password-file", str(path), check=False)
        assert refused.returncode == 1 and words in refused.stderr and "Traceback" not in refused.stderr
    both = a.amparo("responder", "add", "Otra", "--password", "--password-file", str(good), check=False)
    assert both.returncode == 2 and "not both" in both.stderr
    short = tmp_path / "corta.txt"
    short.write_text("corta", "utf-8")
    too_short = a.amparo("responder", "add", "Otra Persona", "--password-file", str(short), check=False)
    assert too_short.returncode == 1 and "at least 10 characters" in too_short.stderr


def test_invite_refusals_say_what_happened(mesh_factory: Any) -> None:
    a, b, c = mesh_factory(3).nodes
    token = json.loads(a.amparo("peer", "invite", "--json").stdout)["token"]
    b.amparo("peer", "accept", token, "--yes")
    again = c.amparo("peer", "accept", token, "--yes", check=False)
    assert again.returncode == 1, again.stderr
    assert "this invite was already used" in again.stderr and "could not reach" not in again.stderr
    assert a.name in again.stderr  # who refused

    for text, words in [
        ("hola, este es mi número", "this is not an Amparo invite"),
        ("amparo1-garbage", "this is not an Amparo invite, or it was cut short"),
        (token[: len(token) // 2], "cut short"),
    ]:
        refused = c.amparo("peer", "accept", text, "--yes", check=False)
        assert refused.returncode == 1 and words in refused.stderr and "Traceback" not in refused.stderr, text
    own = json.loads(c.amparo("peer", "invite", "--json").stdout)["token"]
    mine = c.amparo("peer", "accept", own, "--yes", check=False)
    assert "made by this node itself" in mine.stderr
