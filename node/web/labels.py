"""Words the dashboard shows that come from data, not from a template literal
(a severity, a role, an acknowledgement state, a sign-in error): each is marked
here with ``N_`` so Babel's extraction finds it and translators see it in
``locale/amparo.pot``. The templates translate the value at render time.

``tests/web/test_catalogs.py`` checks that every value of the protocol's and
the desk's vocabularies is listed here, so a new severity cannot ship
untranslated.
"""

from __future__ import annotations

from node.web.i18n import N_

SEVERITY = (N_("extreme"), N_("severe"), N_("moderate"), N_("minor"), N_("unknown"))
URGENCY = (N_("immediate"), N_("expected"), N_("future"), N_("past"), N_("unknown"))
CERTAINTY = (N_("observed"), N_("likely"), N_("possible"), N_("unlikely"), N_("unknown"))
STATUS = (N_("actual"), N_("exercise"), N_("test"))
MSG_TYPE = (N_("alert"), N_("update"), N_("cancel"))
SCOPE = (N_("public"), N_("members"), N_("restricted"))
ACK_STATE = (N_("responding"), N_("seen"), N_("unable"))
ROLE = (N_("admin"), N_("responder"), N_("viewer"))
CHECKIN_STATE = (N_("active"), N_("missed"), N_("stopped"))
ESCALATION_STATE = (N_("paging"), N_("exhausted"), N_("acknowledged"), N_("cancelled"), N_("expired"))
# What happened (protocol EVENTS), as a responder reads it.
EVENT = {
    "threat": N_("threat"),
    "attack": N_("attack"),
    "detention": N_("detention"),
    "disappearance": N_("disappearance"),
    "raid": N_("raid"),
    "surveillance": N_("surveillance"),
    "legal-harassment": N_("legal harassment"),
    "checkin-missed": N_("missed check-in"),
    "other": N_("other"),
}
# The incident timeline (node.timeline.KINDS) as a reader sees it.
STEP = {
    "sent": N_("alert sent"),
    "update": N_("update"),
    "cancel": N_("cancel"),
    "ack": N_("acknowledgement"),
    "escalation": N_("escalation"),
    "debrief": N_("note"),
}

# Messages of the sign-in page and of the "Refused" page (views.py).
LOGIN_EXPIRED = N_("This form expired; please try again.")
LOGIN_WRONG = N_("Wrong name or password.")
LOGIN_WAIT = N_("Too many failed attempts; try again in %(seconds)s seconds.")
SIGN_IN_FIRST = N_("Sign in first.")
CSRF_REFUSED = N_("This form expired or did not come from this dashboard (CSRF).")
ROLE_CANNOT = N_("The %(role)s role cannot do this.")
ROLE_CANNOT_SEND = N_("The %(role)s role cannot send alerts.")
CHOOSE_SEVERITY = N_("Choose a severity: how bad is it?")
SEALED = N_("(sealed: not addressed to this organization)")
CAP_SEALED = N_("This node cannot read that alert (it is sealed to other organizations).")
NOT_OURS = N_("Only the organization that sent an alert is told who received it.")
# The words of a responder's page (``node.alerts.phone_text``, ``node.response.desk.page_text``):
# sent in the responder's language from this same catalog.
PAGE = (
    N_("DRILL"), N_("TEST"), N_("UPDATE"), N_("CANCELLED"), N_("ACTION"), N_("Contact"), N_("From"),
    N_("Acknowledge"), N_("Effective"), N_("Expires"),
    N_("To acknowledge: open the link and press “%(button)s”, or run: %(command)s"),
)

# What a cancel or an update says to everyone who heard the alert (``node.all_clear``):
# who did it and why, or what changed, with the changed fields' names.
ALL_CLEAR = (
    N_("Cancelled by %(sender)s: %(reason)s"), N_("Cancelled by %(sender)s."),
    N_("Updated by %(sender)s: %(changes)s"), N_("Updated by %(sender)s."), N_("%(field)s changed"),
    N_("headline"), N_("severity"), N_("event"), N_("urgency"), N_("certainty"), N_("description"),
    N_("instruction"), N_("contact"), N_("language"), N_("regions"),
)

# Regions as people type them (protocol.regions.resolve; node.web.region_words):
# the dashboard's compose page and the command line say these.
REGION_UNKNOWN = N_("unknown region %(typed)s: give an ISO 3166 code such as MX or MX-OAX, or a region's name")
REGION_UNKNOWN_HINT = N_("unknown region %(typed)s: did you mean %(candidates)s?")
REGION_AMBIGUOUS = N_("%(typed)s names more than one region: %(candidates)s. Give the code of the one you mean.")
REGION_RESOLVED = N_("region %(typed)s → %(code)s (%(name)s)")

# The incident timeline's steps the node writes itself (node.response.escalation.MESSAGES,
# node.response.desk.MESSAGES), shown through node.web.wording in the reader's language.
TIMELINE = (
    N_("paged %(step)s"),
    N_("no acknowledgement in %(timeout)s: paged %(step)s"),
    N_("nobody acknowledged after the whole chain: paging it again every %(every)s"),
    N_("quiet hours: re-paging waits until %(until)s (not severe or extreme)"),
    N_("re-paging round %(round)s: no acknowledgement yet, paged the whole chain again"),
    N_("alert expired: escalation stopped"),
    N_("acknowledged by %(by)s"),
    N_("alert cancelled: escalation stopped"),
    N_("page (%(step)s): %(people)s"),
    N_("page (%(step)s): nobody reachable"),
    N_("page (whole chain, round %(round)s): %(people)s"),
    N_("page (whole chain, round %(round)s): nobody reachable"),
    N_("page (%(step)s): the node stopped while paging %(person)s; not paged again (they may have been reached)"),
    # the all-clear (node.response.all_clear)
    N_("all-clear: cancelled by %(sender)s: %(reason)s — told: %(people)s"),
    N_("all-clear: cancelled by %(sender)s — told: %(people)s"),
    N_("update by %(sender)s (%(fields)s changed) — told: %(people)s"),
    N_("update by %(sender)s — told: %(people)s"),
    N_("%(kind)s: the node stopped while telling %(person)s; not told again (they may have been reached)"),
    N_("all-clear"),
    N_("nobody reachable"),
)
# A step of the escalation chain (the ``step`` field of the messages above).
CHAIN_STEP = {
    "on-call": N_("on-call"),
    "backup": N_("backup"),
    "all": N_("everyone"),
    "chain": N_("whole chain"),
}
# Texts the node signs into the alert a missed check-in raises, and its cancel
# (node.response.checkin_desk.GENERATED), shown in the reader's language.
GENERATED = (
    N_("Missed check-in: %(who)s"),
    N_("Try to reach them now; follow your protocol for a missed check-in."),
    N_("%(who)s checked in."),
    N_("SOS: %(who)s asks for help"),
    N_("SOS under duress: %(who)s asks for help"),
    N_("Reach them and send help now; follow your protocol for a call for help."),
    N_("Duress: %(who)s checked in with their duress PIN"),
    N_("Someone may be forcing them: do not call or message them; follow your protocol for duress."),
    N_("Duress: %(node)s is wiping its node under pressure"),
    N_(
        "Treat anything signed by this node from now on as forged. Reach its people by your "
        "agreed safe channel and follow your protocol for a seized node."
    ),
)
# SMS (node.response.sms.MESSAGES): the reply line a page by SMS carries, and the node's
# answers to a reply, in the person's language.
SMS = (
    N_("Reply by SMS: ACK %(code)s"),
    N_("Checked in at %(time)s. Thank you — stay safe."),
    N_("Help was asked for at %(time)s. Your contacts are being alerted."),
    N_("Acknowledged alert %(code)s. Thank you."),
    N_("Not understood. Reply OK, OK and your PIN, SOS, or ACK and the code of the alert."),
    N_("That PIN is not right. Nothing was sent."),
    N_("This check-in has ended."),
)
# The on-call hand-over notice both people get (node.response.desk.HAND_OVER).
HAND_OVER = (
    N_("On-call hand-over: %(outgoing)s → %(incoming)s"),
    N_("%(incoming)s is on call from %(at)s."),
    N_("%(incoming)s is on call from %(at)s (backup: %(backup)s)."),
    N_("Note: %(note)s"),
)
# A drill's report and chart (node.response.drill.MESSAGES), as the Drills page tells them.
DRILL_REPORT = (
    N_("Drill report: %(name)s"),
    N_("All alerts were exercises, labelled DRILL on every channel."),
    N_("Step %(number)s: %(headline)s"),
    N_("organization **%(org)s**: %(state)s after %(seconds)s s"),
    N_("responder **%(who)s** acknowledged locally after %(seconds)s s"),
    N_("nobody acknowledged"),
    N_("Missed"),
    N_("nothing"),
    N_("Time to acknowledge (s)"),
    N_("No acknowledgements."),
    N_("The drill stopped after %(count)s step(s): %(reason)s"),
)
