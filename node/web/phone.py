"""The check-in phone page (``/checkin/{token}``): what a person in the field
sees, in their language, from the same catalogs as the dashboard.

The language is the check-in's or the person's ``lang``, else the browser's
``Accept-Language``. Every word, those the page's script shows included (they
travel in data attributes), is a catalog message, so a translator adds a
language in one place. ``node.response.checkin_routes`` serves the page.
"""

from __future__ import annotations

from datetime import tzinfo
from pathlib import Path
from typing import Any, Final

import jinja2

from node import clock_text
from node.web import i18n
from node.web.i18n import N_

HERE = Path(__file__).parent
STATIC: Final = {
    "/checkin-phone.js": ("phone.js", "text/javascript"),
    "/checkin-phone.css": ("phone.css", "text/css"),
    "/checkin-sw.js": ("phone-sw.js", "text/javascript"),
}
# The page's state line, before and after a tap (the template has the rest).
STATE: Final = {
    "active": N_("Tap the button before your deadline: %(deadline)s."),
    "missed": N_("Your check-in is overdue! Tap the button now."),
    "stopped": N_("This check-in has ended. Thank you."),
    "standing": N_("Check in whenever you are safe, or ask for help."),
}
ANSWER: Final = {
    "checked-in": N_("Checked in at %(time)s. Thank you — stay safe."),
    "help-asked": N_("Help was asked for at %(time)s. Your organization has been alerted."),
    "wrong-pin": N_("That PIN is not right. Try again."),
    "locked": N_("Too many wrong PINs: wait 15 minutes to check in. You can still ask for help below."),
    "ended": N_("This check-in has ended. Thank you."),
    "confirm": N_("Tick “Yes, I need help now” to send the call for help."),
}
HELP_ASKED: Final = N_("Help was asked for at %(time)s.")

_ENVS: dict[str, jinja2.Environment] = {}


def language(own: str, accept_language: str) -> str:
    """The holder's language when it has one we have, else the browser's."""
    return own if own in i18n.available() else i18n.choose(None, accept_language)


def _env(lang: str) -> jinja2.Environment:
    if lang not in _ENVS:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            extensions=["jinja2.ext.i18n"],
        )
        env.install_gettext_translations(i18n.translations(lang), newstyle=True)  # type: ignore[attr-defined]
        _ENVS[lang] = env
    return _ENVS[lang]


def say(lang: str, message: str, **params: str) -> str:
    text = i18n.translations(lang).gettext(message)
    return text % params if params else text


def state_line(lang: str, state: str, deadline: int, zone: tzinfo) -> str:
    return say(lang, STATE[state], deadline=clock_text.when(deadline, zone)) if state in STATE else ""


def answer_line(lang: str, outcome: str, at: int, zone: tzinfo) -> str:
    return say(lang, ANSWER[outcome], time=clock_text.clock(at, zone))


def help_line(lang: str, sos_at: int, zone: tzinfo) -> str:
    return say(lang, HELP_ASKED, time=clock_text.clock(sos_at, zone)) if sos_at else ""


def clock(ms: int, zone: tzinfo) -> str:
    return clock_text.clock(ms, zone)


def render(lang: str, **ctx: Any) -> str:
    """The page; no ``who`` renders the "not a valid link" page."""
    return _env(lang).get_template("phone.html").render(lang=lang, **ctx)


def static(path: str) -> tuple[bytes, str]:
    name, media = STATIC[path]
    return (HERE / "static" / name).read_bytes(), media
