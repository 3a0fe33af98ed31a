#!/usr/bin/env python3
"""What one clinical event would cost in the most compact SQLite layout of the record we could design (issue 15's
storage target). Not the record's schema: a measurement of a layout with every text id replaced by an integer, the
hash stored as 32 bytes (no stored previous hash), the table clustered on (patient, chain position) and the four
access paths the record needs (de-duplication, global order for followers, timeline, by kind). 1,000 pumps each
append one `state_changed` a minute, interleaved as the load sends them; SQLite's dbstat gives the bytes.

    python3 scripts/compact-record-estimate.py
"""
import hashlib
import os
import sqlite3
import tempfile

PUMPS, MINUTES = 1000, 144  # a tenth of a day
path = os.path.join(tempfile.mkdtemp(), "compact.db")
db = sqlite3.connect(path)
db.executescript(
    """
PRAGMA page_size=4096;
CREATE TABLE ev (
  patient INTEGER NOT NULL, chain_seq INTEGER NOT NULL, id INTEGER NOT NULL,
  device INTEGER NOT NULL, device_seq INTEGER NOT NULL,
  occurred_at_us INTEGER NOT NULL, local_offset_s INTEGER NOT NULL, recorded_at_us INTEGER NOT NULL,
  source INTEGER NOT NULL, actor TEXT NOT NULL, teaching INTEGER NOT NULL, kind INTEGER NOT NULL,
  payload TEXT NOT NULL, hash BLOB NOT NULL,
  PRIMARY KEY (patient, chain_seq)) WITHOUT ROWID;
CREATE UNIQUE INDEX ev_dedup ON ev (device, device_seq);
CREATE UNIQUE INDEX ev_id ON ev (id);
CREATE INDEX ev_time ON ev (patient, occurred_at_us);
CREATE INDEX ev_kind ON ev (patient, kind, occurred_at_us);
"""
)
rows, next_id, seqs = [], 0, [0] * PUMPS
t0 = 1_800_000_000_000_000
for minute in range(MINUTES):
    for p in range(PUMPS):
        next_id += 1
        seqs[p] += 1
        t = t0 + minute * 60_000_000 + p * 1000
        rows.append((p + 1, seqs[p], next_id, p + 1, seqs[p] + 1000, t, 3600, t + 5000, 1, "pump", 0, 7,
                     '{"state":"infusing"}', hashlib.sha256(str(next_id).encode()).digest()))
db.executemany("INSERT INTO ev VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
db.commit()
events = PUMPS * MINUTES
total = 0
for name, size in db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY name"):
    if name.startswith("sqlite_"):
        continue
    total += size
    print(f"{name:10} {size / events:6.1f} bytes an event")
print(f"total      {total / events:6.1f} bytes an event; at 1,440 events a pump-day: {total / events * 1440 / 1000:.0f} KB")
