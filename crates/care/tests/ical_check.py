# Independent check of an Infusafe iCalendar file with the PyPI `icalendar` package (and dateutil for RRULE
# expansion). Reads the .ics on stdin; argv[1] is an ISO timestamp: occurrences are listed from there.
# Prints JSON for the Rust test to compare with its own computation. Exit 3 when icalendar is not installed.
import json
import sys

try:
    import icalendar
    from dateutil.rrule import rrulestr
except ImportError as e:
    print(f"IMPORT_FAILED: {e}", file=sys.stderr)
    sys.exit(3)
import zoneinfo
from datetime import datetime, timezone

raw = sys.stdin.buffer.read()
cal = icalendar.Calendar.from_ical(raw)
after = datetime.fromisoformat(sys.argv[1])
count = int(sys.argv[2])

out = {"version": str(cal["VERSION"]), "prodid": str(cal["PRODID"]), "events": [], "vtimezone_mismatches": []}
zones = {str(tz["TZID"]): tz.to_tz() for tz in cal.walk("VTIMEZONE")}

for ev in cal.walk("VEVENT"):
    start = ev.decoded("DTSTART")
    tzid = ev["DTSTART"].params.get("TZID")
    assert tzid is not None, "DTSTART carries a TZID"
    assert tzid in zones, f"VTIMEZONE for {tzid} is present"
    ref = zoneinfo.ZoneInfo(tzid)
    mine = zones[tzid]
    naive_start = start.replace(tzinfo=None)
    rule = ev["RRULE"].to_ical().decode()
    # Expand in floating local time, then place each occurrence in the zone: that is what a calendar does.
    rrule = rrulestr(rule.replace("Z", "") if "UNTIL" not in rule else rule, dtstart=naive_start if "UNTIL" not in rule else start.astimezone(ref))
    occurrences = []
    for occ in rrule:
        local = occ.replace(tzinfo=None)
        placed = local.replace(tzinfo=ref)
        if placed.astimezone(timezone.utc) <= after:
            continue
        # Our VTIMEZONE must give the same offset as the reference database at every occurrence.
        if mine.utcoffset(local) != ref.utcoffset(local):
            out["vtimezone_mismatches"].append(f"{tzid} {local.isoformat()}: {mine.utcoffset(local)} vs {ref.utcoffset(local)}")
        occurrences.append(placed.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
        if len(occurrences) == count:
            break
    alarms = list(ev.walk("VALARM"))
    out["events"].append({
        "uid": str(ev["UID"]),
        "summary": str(ev["SUMMARY"]),
        "description": str(ev["DESCRIPTION"]),
        "dtstamp": ev.decoded("DTSTAMP").strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration_min": int(ev.decoded("DURATION").total_seconds() // 60),
        "rrule": rule,
        "alarms": [{"action": str(a["ACTION"]), "trigger_min": int(a.decoded("TRIGGER").total_seconds() // 60)} for a in alarms],
        "occurrences": occurrences,
    })
print(json.dumps(out))
