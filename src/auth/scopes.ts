/**
 * SMART on FHIR scopes (v1 `patient/Observation.read`, `user/*.write`, `system/*.*`; v2
 * `system/Patient.rs`, `user/Observation.cruds`) and what they grant. Pure: no I/O.
 */

/** The interaction letters of SMART v2: create, read (read/vread/history), update (update/patch), delete, search. */
export type Letter = 'c' | 'r' | 'u' | 'd' | 's';
export type Level = 'patient' | 'user' | 'system';

/** One resource scope: a level, a type (`*` for all) and the letters it grants. */
export interface Grant {
  level: Level;
  type: string;
  letters: ReadonlySet<Letter>;
}

/** The caller of a request in auth mode, from a verified token. */
export interface Principal {
  /** The `sub` claim, else `client_id`: who is logged and who owns subscriptions. */
  id: string;
  /** The `scope` claim as granted (recorded with the subscriptions this principal creates). */
  scope: string;
  grants: readonly Grant[];
  /** The `patient` claim: the Patient id that confines the `patient/` grants. */
  patient?: string;
  /** Holds the admin scope: sees and manages every subscription. */
  admin: boolean;
}

/**
 * How far a principal reaches for one type and letter: every resource (`all`), only the
 * compartment of its patient (`patient`), or nothing.
 */
export type Reach = 'all' | 'patient' | 'none';

const V1: Record<string, string> = { read: 'rs', write: 'cud', '*': 'cruds' };
const SCOPE = /^(patient|user|system)\/([A-Za-z]+|\*)\.([a-z*]+)$/;

/**
 * The resource grants in a scope string. Other scopes (openid, launch, …) and v2 scopes with
 * query parameters (`?category=…`, which Herald does not evaluate) grant nothing.
 */
export function parseScopes(scope: string): Grant[] {
  const out: Grant[] = [];
  for (const token of scope.split(/\s+/)) {
    const m = SCOPE.exec(token);
    if (!m) continue;
    const letters = V1[m[3]!] ?? (/^c?r?u?d?s?$/.test(m[3]!) ? m[3]! : '');
    if (letters === '') continue;
    out.push({ level: m[1] as Level, type: m[2]!, letters: new Set(letters.split('') as Letter[]) });
  }
  return out;
}

export function principalOf(id: string, scope: string, patient: string | undefined, adminScope: string): Principal {
  return {
    id,
    scope,
    grants: parseScopes(scope),
    ...(patient ? { patient } : {}),
    admin: scope.split(/\s+/).includes(adminScope),
  };
}

/**
 * The widest reach any grant gives for `type` and `letter`. A `patient/` grant reaches only when
 * the principal has a patient context. Subscriptions are governed by ownership instead of the
 * compartment, so a `patient/Subscription` grant reaches them all (the caller's own, see D-22).
 */
export function reach(p: Principal, type: string, letter: Letter): Reach {
  let best: Reach = 'none';
  for (const g of p.grants) {
    if ((g.type !== '*' && g.type !== type) || !g.letters.has(letter)) continue;
    if (g.level !== 'patient' || type === 'Subscription') return 'all';
    if (p.patient !== undefined) best = 'patient';
  }
  return best;
}

/** A short description of what a letter needs, for 403 messages. */
export const LETTER_NAMES: Record<Letter, string> = { c: 'create', r: 'read', u: 'update', d: 'delete', s: 'search' };
