"""Builds the SQLite database of the lookup variants from the key file: a table shaped like
Laravel Sanctum's personal_access_tokens (token = SHA-256 hex of the token, UNIQUE index;
abilities as JSON; last_used_at; plus a uses counter), WAL mode as a multi-worker server
would use. Usage: make_sqlite.py KEYFILE DBFILE"""
import hashlib
import sqlite3
import sys

keyfile, dbfile = sys.argv[1], sys.argv[2]
db = sqlite3.connect(dbfile)
db.execute("PRAGMA journal_mode = WAL")
db.execute("""CREATE TABLE personal_access_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tokenable_type VARCHAR NOT NULL,
    tokenable_id INTEGER NOT NULL,
    name VARCHAR NOT NULL,
    token VARCHAR(64) NOT NULL UNIQUE,
    abilities TEXT,
    last_used_at DATETIME,
    expires_at DATETIME,
    created_at DATETIME,
    updated_at DATETIME,
    uses INTEGER NOT NULL DEFAULT 0)""")
db.execute("CREATE INDEX personal_access_tokens_tokenable ON personal_access_tokens (tokenable_type, tokenable_id)")
with open(keyfile) as f, db:
    db.executemany(
        "INSERT INTO personal_access_tokens (tokenable_type, tokenable_id, name, token, abilities, created_at, updated_at)"
        " VALUES ('App\\Models\\User', ?, ?, ?, '[\"read\"]', datetime('now'), datetime('now'))",
        ((i % 1000, f"http bench key {i}", hashlib.sha256(line.strip().encode()).hexdigest()) for i, line in enumerate(f)),
    )
print(db.execute("SELECT count(*) FROM personal_access_tokens").fetchone()[0])
db.close()
