import { FhirError, badRequest } from '../fhir/errors.ts';
import { parseJson } from '../fhir/json.ts';

/**
 * JSON in, JSON out. XML is recognised only to refuse it clearly: 415 for an XML body, 406 when a
 * client accepts nothing but XML.
 */
const JSON_TYPES = new Set(['application/fhir+json', 'application/json', 'application/json-patch+json']);
const XML = /(^|\/|\+)xml$/;

const FORM = 'application/x-www-form-urlencoded';

/**
 * Parses a request body of a JSON media type (or a form, which only POST _search takes: it comes
 * back as URLSearchParams); any other media type is a 415.
 */
export function parseBody(mediaType: string, text: string): unknown {
  if (mediaType === FORM) return new URLSearchParams(text);
  if (XML.test(mediaType)) {
    throw new FhirError(415, 'not-supported', 'XML is not supported: send application/fhir+json');
  }
  if (!JSON_TYPES.has(mediaType)) {
    throw new FhirError(415, 'not-supported', `Unsupported Content-Type '${mediaType.slice(0, 80)}': send application/fhir+json`);
  }
  if (text.trim() === '') return undefined;
  try {
    return parseJson(text, { strict: true });
  } catch (err) {
    if (err instanceof FhirError) throw err;
    throw badRequest(`The request body is not valid JSON: ${(err as Error).message.slice(0, 200)}`);
  }
}

const FORMAT_JSON = new Set(['json', 'application/json', 'application/fhir+json']);
const FORMAT_XML = new Set(['xml', 'text/xml', 'application/xml', 'application/fhir+xml']);

/** `4.0.1` → `4.0`: the form of the media types' `fhirVersion` parameter (http.html#version-parameter). */
const majorMinor = (version: string) => version.split('.').slice(0, 2).join('.');

/** A media type's parameters, names in lower case. */
function parameters(mediaType: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of mediaType.split(';').slice(1)) {
    const eq = part.indexOf('=');
    if (eq > 0) out.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim().replace(/^"|"$/g, ''));
  }
  return out;
}

/**
 * Checks `_format` and `Accept`; throws 406 when the client can only take XML (or anything
 * unknown), or only another FHIR version than the base's (`fhirVersion=…`). A range with `q=0` is
 * one the client refuses.
 */
export function checkAcceptable(format: string | null, accept: string | undefined, fhirVersion?: string): void {
  if (format !== null) {
    const f = format.split(';')[0]!.trim();
    const wrong = fhirVersion ? wrongVersion(format, fhirVersion) : undefined;
    if (wrong) throw new FhirError(406, 'not-supported', wrong);
    if (FORMAT_JSON.has(f)) return;
    if (FORMAT_XML.has(f)) throw new FhirError(406, 'not-supported', 'XML is not supported: use _format=json');
    throw new FhirError(406, 'not-supported', `Unsupported _format '${format.slice(0, 80)}'`);
  }
  if (!accept) return;
  let versionRefused: string | undefined;
  const ok = accept.split(',').some((range) => {
    const t = range.split(';')[0]!.trim().toLowerCase();
    const params = parameters(range);
    if (params.has('q') && Number(params.get('q')) === 0) return false;
    if (!(t === '*/*' || t === 'application/*' || t.endsWith('json') || t === '')) return false;
    const wrong = fhirVersion ? wrongVersion(range, fhirVersion) : undefined;
    versionRefused ??= wrong;
    return wrong === undefined;
  });
  if (!ok) throw new FhirError(406, 'not-supported', versionRefused ?? `Cannot answer in '${accept.slice(0, 80)}': Herald speaks application/fhir+json`);
}

/** Why a media type's `fhirVersion` is not the base's, if it names another. */
export function wrongVersion(mediaType: string, fhirVersion: string): string | undefined {
  const asked = parameters(mediaType).get('fhirversion');
  if (asked === undefined || majorMinor(asked) === majorMinor(fhirVersion)) return undefined;
  return `This base speaks FHIR ${majorMinor(fhirVersion)}, not fhirVersion=${asked.slice(0, 20)}: use the base of that version`;
}
