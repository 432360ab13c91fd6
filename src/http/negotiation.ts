import { FhirError, badRequest } from '../fhir/errors.ts';

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
    return JSON.parse(text);
  } catch (err) {
    throw badRequest(`The request body is not valid JSON: ${(err as Error).message.slice(0, 200)}`);
  }
}

const FORMAT_JSON = new Set(['json', 'application/json', 'application/fhir+json']);
const FORMAT_XML = new Set(['xml', 'text/xml', 'application/xml', 'application/fhir+xml']);

/** Checks `_format` and `Accept`; throws 406 when the client can only take XML (or anything unknown). */
export function checkAcceptable(format: string | null, accept: string | undefined): void {
  if (format !== null) {
    const f = format.split(';')[0]!.trim();
    if (FORMAT_JSON.has(f)) return;
    if (FORMAT_XML.has(f)) throw new FhirError(406, 'not-supported', 'XML is not supported: use _format=json');
    throw new FhirError(406, 'not-supported', `Unsupported _format '${format.slice(0, 80)}'`);
  }
  if (!accept) return;
  const types = accept.split(',').map((t) => t.split(';')[0]!.trim().toLowerCase());
  const ok = types.some((t) => t === '*/*' || t === 'application/*' || t.endsWith('json') || t === '');
  if (!ok) throw new FhirError(406, 'not-supported', `Cannot answer in '${accept.slice(0, 80)}': Herald speaks application/fhir+json`);
}
