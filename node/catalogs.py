"""The Spanish and English gettext catalogs, for every text people read: the
dashboard (``node.web.i18n``) and what is sent to them (a responder's page,
``node.alerts.phone_text``). One catalog, so a page and the screen it links to
use the same words.

Translators edit ``node/web/locale/<lang>/LC_MESSAGES/amparo.po``; the catalogs
are compiled in memory with Babel on first use (no build step, no internet).
English is the source language. Words used outside ``node/web`` are marked there
too (``node.web.labels``), so Babel's extraction finds them.
"""

from __future__ import annotations

import gettext
import io
from functools import lru_cache
from pathlib import Path

LOCALE_DIR = Path(__file__).parent / "web" / "locale"
DEFAULT = "en"


def available() -> list[str]:
    return [
        DEFAULT,
        *sorted(p.name for p in LOCALE_DIR.iterdir() if (p / "LC_MESSAGES" / "amparo.po").is_file()),
    ]


@lru_cache(maxsize=16)
def translations(language: str) -> gettext.NullTranslations:
    po = LOCALE_DIR / language / "LC_MESSAGES" / "amparo.po"
    if language == DEFAULT or not po.is_file():
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo  # only for a language other than English (CLI start time)
    from babel.messages.pofile import read_po

    with po.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)
