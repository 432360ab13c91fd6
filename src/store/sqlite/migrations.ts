/**
 * Schema migrations, applied in order inside one transaction at open. Never edit a migration that
 * has shipped: add a new one.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: resource versions (all history, newest per id is current) and a token index of current versions.
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

  CREATE TABLE token_index (
    fv     TEXT NOT NULL,
    type   TEXT NOT NULL,
    code   TEXT NOT NULL,
    system TEXT NOT NULL,
    value  TEXT NOT NULL,
    id     TEXT NOT NULL
  );
  CREATE INDEX token_index_lookup ON token_index (fv, type, code, value, system);
  CREATE INDEX token_index_owner ON token_index (fv, type, id);
  `,
];
