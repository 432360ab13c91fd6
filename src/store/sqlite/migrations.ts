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
];
