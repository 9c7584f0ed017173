"""Regions as people type them on the command line (issue 13, item 7).

``mx-oax`` is sent as MX-OAX without a word; a name (``Oaxaca``, ``Estado de
México``) is resolved here, before anything is sent, and the CLI says what it
took it to mean on stderr ("region Oaxaca → MX-OAX (Oaxaca, México)"); with
``--json`` the command's output carries the same under ``"resolved"``. A name
that fits nothing, or several regions, is refused in the person's words and
language (the dashboard's catalogs), never with an internal field path.

Codes are only upper-cased here (no catalogue needed, so the command stays
fast); the node checks them against the catalogue and suggests close ones.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from protocol.regions import is_well_formed


def language() -> str:
    from node.web.i18n import from_environment

    return from_environment(dict(os.environ))


def resolve_all(home: Path, typed: Iterable[str], *, as_json: bool) -> tuple[list[str], list[dict[str, Any]]]:
    """The codes for ``typed`` and, for each name among them, how it was read.
    Names are read within the node's watched regions and the codes typed with them."""
    typed = list(typed)
    codes = [t.strip().upper() for t in typed]
    names = [t for t, c in zip(typed, codes, strict=True) if not is_well_formed(c)]
    if not names:
        return codes, []
    from protocol.regions import UnknownRegion, resolve

    near = (*[c for c in codes if is_well_formed(c)], *_watched(home))
    out, told = [], []
    for text, code in zip(typed, codes, strict=True):
        if is_well_formed(code):
            out.append(code)
            continue
        try:
            resolved = resolve(text, near)
        except UnknownRegion as exc:
            from node.web.region_words import region_refusal

            raise click.ClickException(region_refusal(exc, language())) from None
        out.append(resolved.code)
        told.append(resolved.to_doc())
        if not as_json:
            from node.web.region_words import region_resolved

            click.echo(region_resolved(resolved, language()), err=True)
    return out, told


def resolve_one(home: Path, typed: str | None, *, as_json: bool) -> tuple[str | None, list[dict[str, Any]]]:
    if not typed:
        return typed, []
    codes, told = resolve_all(home, [typed], as_json=as_json)
    return codes[0], told


def _watched(home: Path) -> list[str]:
    """The node's watched regions (its own country), if its configuration can be
    read; else the country of the terminal's locale (``LANG=es_MX.UTF-8``)."""
    from node.config import ConfigError, load
    from node.web.i18n import countries_of

    try:
        watched = list(load(home).watch_regions)
    except (ConfigError, OSError):
        watched = []
    locale = ",".join(os.environ.get(v, "") for v in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"))
    return watched or list(countries_of(locale))
