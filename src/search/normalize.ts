/**
 * The one string normalisation of search: index rows (extract.ts) and search values (parse.ts)
 * both go through it, so the store's search and the in-memory matcher compare the same text.
 * FHIR string search is case- and accent-insensitive (search.html#string).
 */
export function normalizeString(s: string): string {
  return s
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/\s+/g, ' ')
    .trim();
}
