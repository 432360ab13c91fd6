/**
 * Schema migrations, applied in order inside one transaction at open. Never edit a migration that
 * has shipped: add a new one.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: resource versions (all history), the current version of each resource, and the search
  //    index of current versions (one table per kind of index row, see search/types.ts). Index
  //    tables are clustered by owner (fv, type, id), so replacing a resource's rows needs no
  //    second index; each has one index on its values for search.
  `
  CREATE TABLE resource_versions (
    seq          INTEGER PRIMARY KEY,
    fv           TEXT    NOT NULL,
    type         TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    vid          INTEGER NOT NULL,
    last_updated TEXT    NOT NULL,
    method       TEXT    NOT NULL,
    body         TEXT,
    UNIQUE (fv, type, id, vid)
  );
  CREATE INDEX resource_versions_type ON resource_versions (fv, type, seq);
  CREATE INDEX resource_versions_fv ON resource_versions (fv, seq);

  CREATE TABLE resources (
    fv           TEXT    NOT NULL,
    type         TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    vid          INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    last_updated TEXT    NOT NULL,
    deleted      INTEGER NOT NULL,
    PRIMARY KEY (fv, type, id)
  ) WITHOUT ROWID;

  CREATE TABLE sp_string (fv TEXT NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL, code TEXT NOT NULL, n INTEGER NOT NULL, grp INTEGER NOT NULL,
    norm TEXT NOT NULL, exact TEXT NOT NULL,
    PRIMARY KEY (fv, type, id, code, n)) WITHOUT ROWID;
  CREATE INDEX sp_string_v ON sp_string (fv, type, code, norm);

  CREATE TABLE sp_token (fv TEXT NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL, code TEXT NOT NULL, n INTEGER NOT NULL, grp INTEGER NOT NULL,
    system TEXT, value TEXT, text TEXT,
    PRIMARY KEY (fv, type, id, code, n)) WITHOUT ROWID;
  CREATE INDEX sp_token_v ON sp_token (fv, type, code, value, system);

  CREATE TABLE sp_reference (fv TEXT NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL, code TEXT NOT NULL, n INTEGER NOT NULL, grp INTEGER NOT NULL,
    target_type TEXT, target_id TEXT, url TEXT, version TEXT, ident_system TEXT, ident_value TEXT,
    PRIMARY KEY (fv, type, id, code, n)) WITHOUT ROWID;
  CREATE INDEX sp_reference_v ON sp_reference (fv, type, code, target_id, target_type);
  CREATE INDEX sp_reference_t ON sp_reference (fv, target_type, target_id);

  CREATE TABLE sp_date (fv TEXT NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL, code TEXT NOT NULL, n INTEGER NOT NULL, grp INTEGER NOT NULL,
    lo REAL NOT NULL, hi REAL NOT NULL,
    PRIMARY KEY (fv, type, id, code, n)) WITHOUT ROWID;
  CREATE INDEX sp_date_v ON sp_date (fv, type, code, lo, hi);

  CREATE TABLE sp_number (fv TEXT NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL, code TEXT NOT NULL, n INTEGER NOT NULL, grp INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (fv, type, id, code, n)) WITHOUT ROWID;
  CREATE INDEX sp_number_v ON sp_number (fv, type, code, value);

  CREATE TABLE sp_quantity (fv TEXT NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL, code TEXT NOT NULL, n INTEGER NOT NULL, grp INTEGER NOT NULL,
    value REAL NOT NULL, system TEXT, unit_code TEXT, unit TEXT,
    PRIMARY KEY (fv, type, id, code, n)) WITHOUT ROWID;
  CREATE INDEX sp_quantity_v ON sp_quantity (fv, type, code, value);

  CREATE TABLE sp_uri (fv TEXT NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL, code TEXT NOT NULL, n INTEGER NOT NULL, grp INTEGER NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (fv, type, id, code, n)) WITHOUT ROWID;
  CREATE INDEX sp_uri_v ON sp_uri (fv, type, code, value);
  `,
  // 2: the subscription event log (the transactional outbox of REQUIREMENTS D-18) with its
  //    per-subscription counters, and the delivery cursor of each subscription.
  `
  CREATE TABLE subscription_counters (
    fv           TEXT    NOT NULL,
    subscription TEXT    NOT NULL,
    last_number  INTEGER NOT NULL,
    PRIMARY KEY (fv, subscription)
  ) WITHOUT ROWID;

  CREATE TABLE subscription_events (
    fv           TEXT    NOT NULL,
    subscription TEXT    NOT NULL,
    number       INTEGER NOT NULL,
    ts           TEXT    NOT NULL,
    focus_type   TEXT    NOT NULL,
    focus_id     TEXT    NOT NULL,
    focus_vid    INTEGER NOT NULL,
    interaction  TEXT    NOT NULL,
    PRIMARY KEY (fv, subscription, number)
  ) WITHOUT ROWID;
  CREATE INDEX subscription_events_ts ON subscription_events (ts);

  CREATE TABLE subscription_delivery (
    fv                TEXT    NOT NULL,
    subscription      TEXT    NOT NULL,
    delivered_through INTEGER NOT NULL,
    attempts          INTEGER NOT NULL,
    failing_since     TEXT,
    last_error        TEXT,
    PRIMARY KEY (fv, subscription)
  ) WITHOUT ROWID;
  `,
  // 3: websocket binding tokens (REQUIREMENTS D-2): only a hash of each token is kept, with its
  //    owner, subscriptions and expiry; revoked when its subscriptions are deleted or set off.
  `
  CREATE TABLE ws_tokens (
    hash       TEXT    PRIMARY KEY,
    fv         TEXT    NOT NULL,
    owner      TEXT    NOT NULL,
    expires_at TEXT    NOT NULL,
    revoked    INTEGER NOT NULL DEFAULT 0
  ) WITHOUT ROWID;
  CREATE TABLE ws_token_subscriptions (
    hash         TEXT NOT NULL,
    fv           TEXT NOT NULL,
    subscription TEXT NOT NULL,
    PRIMARY KEY (fv, subscription, hash)
  ) WITHOUT ROWID;
  CREATE INDEX ws_token_subscriptions_hash ON ws_token_subscriptions (hash);
  `,
  // 4: who created each Subscription, with the scopes and patient context of the creating token
  //    (REQUIREMENTS D-22): its notifications are filtered with them.
  `
  CREATE TABLE subscription_owners (
    fv           TEXT NOT NULL,
    subscription TEXT NOT NULL,
    owner        TEXT NOT NULL,
    scope        TEXT NOT NULL,
    patient      TEXT,
    PRIMARY KEY (fv, subscription)
  ) WITHOUT ROWID;
  `,
  // 5: when the events through delivered_through were delivered, and when a failing rest-hook
  //    subscription's next attempt is due (both shown by $status).
  `
  ALTER TABLE subscription_delivery ADD COLUMN delivered_at TEXT;
  ALTER TABLE subscription_delivery ADD COLUMN next_attempt_at TEXT;
  `,
  // 6: the event log made compact (issue 15). A change that matches many subscriptions is stored
  //    once (event_changes, in commit order); each subscription gets a small integer key that
  //    also holds its counter (subscription_keys), and each event is a (key, number, change)
  //    triple. One create matching 100 subscriptions wrote 100 wide rows on 100 pages keyed by
  //    text; it now writes one change and 100 rows of three integers (~2.3x less writer CPU).
  `
  CREATE TABLE subscription_keys (
    key          INTEGER PRIMARY KEY,
    fv           TEXT    NOT NULL,
    subscription TEXT    NOT NULL,
    last_number  INTEGER NOT NULL,
    UNIQUE (fv, subscription)
  );
  CREATE TABLE event_changes (
    seq          INTEGER PRIMARY KEY,
    ts           TEXT    NOT NULL,
    focus_type   TEXT    NOT NULL,
    focus_id     TEXT    NOT NULL,
    focus_vid    INTEGER NOT NULL,
    interaction  TEXT    NOT NULL
  );
  CREATE INDEX event_changes_ts ON event_changes (ts);
  CREATE TABLE event_numbers (
    key          INTEGER NOT NULL,
    number       INTEGER NOT NULL,
    change       INTEGER NOT NULL,
    PRIMARY KEY (key, number)
  ) WITHOUT ROWID;
  CREATE INDEX event_numbers_change ON event_numbers (change);

  INSERT INTO subscription_keys (fv, subscription, last_number)
    SELECT fv, subscription, last_number FROM subscription_counters ORDER BY fv, subscription;
  INSERT INTO event_changes (ts, focus_type, focus_id, focus_vid, interaction)
    SELECT DISTINCT ts, focus_type, focus_id, focus_vid, interaction FROM subscription_events ORDER BY ts;
  INSERT INTO event_numbers (key, number, change)
    SELECT k.key, e.number, c.seq FROM subscription_events e
    JOIN subscription_keys k ON k.fv = e.fv AND k.subscription = e.subscription
    JOIN event_changes c ON c.ts = e.ts AND c.focus_type = e.focus_type AND c.focus_id = e.focus_id
      AND c.focus_vid = e.focus_vid AND c.interaction = e.interaction;
  DROP TABLE subscription_events;
  DROP TABLE subscription_counters;
  `,
  // 7: events clustered by change (issue 15). With rows keyed by (key, number), a change matching
  //    100 subscriptions dirtied 100 leaf pages, one per subscription, and writing them at COMMIT
  //    was most of a create's cost. Now a change's events are one run of (change, key) rows,
  //    appended; each row points to the subscription's previous event (prev), each subscription's
  //    newest event is its head (subscription_keys.last_change), and every 64th number is marked
  //    (event_marks), so reading any span walks at most 63 events more than it returns.
  //    first_number is the oldest number still held (above last_number when none is);
  //    prev_change receives last_change's old value as the counter is bumped, so the one statement
  //    that bumps it also tells the new event its prev.
  `
  ALTER TABLE subscription_keys ADD COLUMN first_number INTEGER NOT NULL DEFAULT 1;
  ALTER TABLE subscription_keys ADD COLUMN last_change INTEGER;
  ALTER TABLE subscription_keys ADD COLUMN prev_change INTEGER;
  CREATE TABLE event_members (
    change       INTEGER NOT NULL,
    key          INTEGER NOT NULL,
    number       INTEGER NOT NULL,
    prev         INTEGER,
    PRIMARY KEY (change, key)
  ) WITHOUT ROWID;
  CREATE TABLE event_marks (
    key          INTEGER NOT NULL,
    number       INTEGER NOT NULL,
    change       INTEGER NOT NULL,
    PRIMARY KEY (key, number)
  ) WITHOUT ROWID;

  INSERT INTO event_members (change, key, number, prev)
    SELECT change, key, number, lag(change) OVER (PARTITION BY key ORDER BY number) FROM event_numbers ORDER BY change, key;
  INSERT INTO event_marks (key, number, change) SELECT key, number, change FROM event_numbers WHERE number % 64 = 0;
  UPDATE subscription_keys SET
    first_number = coalesce((SELECT min(n.number) FROM event_numbers n WHERE n.key = subscription_keys.key), last_number + 1),
    last_change = (SELECT n.change FROM event_numbers n WHERE n.key = subscription_keys.key AND n.number = subscription_keys.last_number);
  DROP TABLE event_numbers;
  `,
  // 8: the search index written after the commit that acknowledges a version (issue 15,
  //    deferred-index.ts). A version's index rows touch one leaf page per parameter, ~40 pages for
  //    a full Patient, and syncing them was most of a lone create's commit. The commit now holds
  //    the rows as one appended entry here; the writer moves them into the sp_* tables after it
  //    has answered (or at the start of its next group), and applies whatever a crash left here
  //    when it opens. rows (v8-serialized) is null for a deletion; fresh = 1 when there were no earlier rows.
  `
  CREATE TABLE index_pending (
    seq          INTEGER PRIMARY KEY,
    fv           TEXT    NOT NULL,
    type         TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    fresh        INTEGER NOT NULL,
    rows         BLOB
  );
  `,
  // 9: how far a date parameter's values reach, per resource type (search-sql.ts, DATE_BOUNDS):
  //    the longest span (hi - lo) of one value, infinite once a value is open at either end, and
  //    whether any resource has several values for it. A date condition then bounds the start of
  //    the values it can match, so the (lo, hi) index seeks instead of reading every row of the
  //    parameter, and two conditions on a parameter no resource repeats test one row. Only grows.
  `
  CREATE TABLE date_bounds (
    fv           TEXT    NOT NULL,
    type         TEXT    NOT NULL,
    code         TEXT    NOT NULL,
    span         REAL    NOT NULL,
    multi        INTEGER NOT NULL,
    PRIMARY KEY (fv, type, code)
  ) WITHOUT ROWID;
  INSERT INTO date_bounds (fv, type, code, span, multi)
    SELECT fv, type, code, max(span), max(several) FROM (
      SELECT fv, type, code, max(coalesce(hi - lo, 9e999)) AS span, count(*) > 1 AS several FROM sp_date GROUP BY fv, type, id, code
    ) GROUP BY fv, type, code;
  `,
  // 10: a date value that ends before it starts (a Period with end < start) makes its
  //    parameter's span infinite (date-bounds.ts): the windows assume lo <= hi. Migration 9
  //    counted such a value as a negative span.
  `
  UPDATE date_bounds SET span = 9e999
    WHERE EXISTS (SELECT 1 FROM sp_date d WHERE d.fv = date_bounds.fv AND d.type = date_bounds.type AND d.code = date_bounds.code AND d.hi < d.lo);
  `,
  // 11: what each FHIR version's search index was built with, and how far a rebuild has come
  //    (store/reindex.ts): an IndexState as JSON. A database without a row is rebuilt once.
  `
  CREATE TABLE index_state (
    fv           TEXT    PRIMARY KEY,
    state        TEXT    NOT NULL
  ) WITHOUT ROWID;
  `,
  // 12: canonical references (and absolute URLs outside the server) by URL, for _revinclude, _has
  //    and chains through canonicals (search-sql.ts, namesUrl). Partial: a literal reference (the
  //    bulk of the rows, with a target type) costs a write nothing more.
  `
  CREATE INDEX sp_reference_url ON sp_reference (fv, type, code, url) WHERE target_type IS NULL AND url IS NOT NULL;
  `,
];
