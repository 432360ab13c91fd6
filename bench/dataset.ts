/**
 * The search scenario's data set, deterministic (seeded PRNG): 100 Organizations, 20,000 Patients
 * and 79,900 Observations (100,000 resources), as transaction Bundles; plus posting Bundles.
 */
import type { Resource } from '../src/fhir/types.ts';

/** mulberry32: a small seeded PRNG, so every run stores the same data. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const COUNTS = { organizations: 100, patients: 20_000, observations: 79_900 };
export const ID_SYSTEM = 'urn:sys';
export const LOINC = 'http://loinc.org';
/** A few vital-sign LOINC codes with a unit and a plausible range. */
export const CODES: { code: string; display: string; unit: string; min: number; max: number }[] = [
  { code: '8867-4', display: 'Heart rate', unit: '/min', min: 45, max: 140 },
  { code: '8310-5', display: 'Body temperature', unit: 'Cel', min: 35, max: 40 },
  { code: '29463-7', display: 'Body weight', unit: 'kg', min: 3, max: 150 },
  { code: '8302-2', display: 'Body height', unit: 'cm', min: 45, max: 205 },
  { code: '9279-1', display: 'Respiratory rate', unit: '/min', min: 8, max: 30 },
  { code: '2708-6', display: 'Oxygen saturation', unit: '%', min: 85, max: 100 },
  { code: '2339-0', display: 'Glucose', unit: 'mg/dL', min: 60, max: 250 },
  { code: '8480-6', display: 'Systolic blood pressure', unit: 'mm[Hg]', min: 90, max: 190 },
];
const FIRST = ['Bar', 'Cor', 'Dal', 'Fen', 'Gar', 'Hol', 'Kel', 'Lor', 'Mar', 'Nor', 'Pel', 'Ros', 'Sal', 'Tam', 'Val', 'Wes', 'Bel', 'Cam', 'Dun', 'Fal'];
const SECOND = ['ton', 'son', 'ley', 'man', 'ford', 'ris', 'dal', 'well', 'ing', 'ott'];
/** 200 family names, none a prefix of another (string search matches prefixes). */
export const FAMILIES = FIRST.flatMap((a) => SECOND.map((b) => `${a}${b}x`));
const GIVEN = ['Anna', 'Ben', 'Clara', 'David', 'Eva', 'Felix', 'Greta', 'Hugo', 'Ida', 'Jonas', 'Lena', 'Max'];
/** Observation dates are spread over these ten years. */
export const YEARS = { from: 2015, to: 2024 };

export const orgId = (i: number) => `org-${String(i).padStart(3, '0')}`;
export const patientId = (i: number) => `pat-${String(i).padStart(5, '0')}`;
export const mrn = (i: number) => `MRN-${String(i).padStart(7, '0')}`;
export const familyOf = (i: number) => FAMILIES[i % FAMILIES.length]!;

/** The Bundles to load, in order (Organizations and Patients first: they are referenced). */
export function* bundles(size: number, seed = 42): Generator<Resource> {
  const rnd = prng(seed);
  const pick = <T>(list: T[]) => list[Math.floor(rnd() * list.length)]!;
  const entries: unknown[] = [];
  const put = (r: Resource & { id: string }) => entries.push({ resource: r, request: { method: 'PUT', url: `${r.resourceType}/${r.id}` } });
  const flush = function* () {
    if (entries.length > 0) yield { resourceType: 'Bundle', type: 'transaction', entry: entries.splice(0) } as Resource;
  };
  for (let i = 0; i < COUNTS.organizations; i++) {
    put({ resourceType: 'Organization', id: orgId(i), active: true, name: `Clinic ${i}`, identifier: [{ system: 'urn:org', value: `ORG-${i}` }] });
  }
  for (let i = 0; i < COUNTS.patients; i++) {
    const day = new Date(Date.UTC(1930, 0, 1) + Math.floor(rnd() * 90 * 365.25) * 86_400_000).toISOString().slice(0, 10);
    put({
      resourceType: 'Patient',
      id: patientId(i),
      identifier: [{ system: ID_SYSTEM, value: mrn(i) }],
      active: true,
      name: [{ use: 'official', family: familyOf(i), given: [pick(GIVEN)] }],
      gender: rnd() < 0.5 ? 'female' : 'male',
      birthDate: day,
      managingOrganization: { reference: `Organization/${orgId(Math.floor(rnd() * COUNTS.organizations))}` },
    });
    if (entries.length >= size) yield* flush();
  }
  yield* flush();
  const start = Date.UTC(YEARS.from, 0, 1);
  const span = Date.UTC(YEARS.to + 1, 0, 1) - start;
  for (let i = 0; i < COUNTS.observations; i++) {
    const c = pick(CODES);
    entries.push({
      resource: {
        resourceType: 'Observation',
        status: 'final',
        category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }],
        code: { coding: [{ system: LOINC, code: c.code, display: c.display }], text: c.display },
        subject: { reference: `Patient/${patientId(Math.floor(rnd() * COUNTS.patients))}` },
        effectiveDateTime: new Date(start + Math.floor(rnd() * span / 1000) * 1000).toISOString().replace('.000Z', 'Z'),
        valueQuantity: { value: Math.round((c.min + rnd() * (c.max - c.min)) * 10) / 10, unit: c.unit, system: 'http://unitsofmeasure.org', code: c.unit },
      },
      request: { method: 'POST', url: 'Observation' },
    });
    if (entries.length >= size) yield* flush();
  }
  yield* flush();
}

/** POSTs a transaction or batch Bundle to `base` and throws unless it answers 200. */
export async function postBundle(base: string, bundle: unknown): Promise<void> {
  const res = await fetch(base, {
    method: 'POST',
    headers: { 'content-type': 'application/fhir+json', prefer: 'return=minimal' },
    body: JSON.stringify(bundle),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`transaction answered ${res.status}: ${text.slice(0, 500)}`);
}

/**
 * Posts every Bundle of `source` with `parallel` in flight (so generating the next overlaps storing
 * this one); returns how many resources went in and the seconds it took.
 */
export async function loadAll(base: string, source: Iterable<Resource>, parallel = 2): Promise<{ resources: number; seconds: number }> {
  const t0 = performance.now();
  const it = source[Symbol.iterator]();
  let resources = 0;
  const worker = async () => {
    for (let next = it.next(); !next.done; next = it.next()) {
      resources += (next.value.entry as unknown[]).length;
      await postBundle(base, next.value);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return { resources, seconds: (performance.now() - t0) / 1000 };
}
