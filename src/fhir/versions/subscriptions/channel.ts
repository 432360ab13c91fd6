/**
 * Channel details shared by the backport and R5 readers: channel type codings (S-10, CC-1,
 * ISSUE-4) and HTTP headers (RH-3).
 */
import type { Channel, PayloadContent } from '../../subscription-model.ts';
import { SYSTEM } from './constants.ts';
import { fail, type Json, optString } from './json.ts';

export const CONTENT_CODES: readonly PayloadContent[] = ['empty', 'id-only', 'full-resource'];

/** Default notification MIME type where a version lets the client leave it out (R5 `contentType`). */
export const DEFAULT_CONTENT_TYPE = 'application/fhir+json';

const STANDARD_SYSTEMS: readonly string[] = [SYSTEM.channelTypeR5, SYSTEM.channelTypeR4];

/**
 * A channel-type Coding as the model's ChannelType: the bare code for the standard systems (or no
 * system), `system#code` for custom channels (e.g. zulip) so they never pass for a standard one.
 */
export function channelTypeOf(coding: Json, path: string): Channel['type'] {
  const code = optString(coding, 'code', path) ?? fail(`${path}.code`, 'is required');
  const system = optString(coding, 'system', path);
  return system === undefined || STANDARD_SYSTEMS.includes(system) ? code : `${system}#${code}`;
}

/** HTTP header field names (RFC 9110 token). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** One R4 `channel.header` string, `Name: value` (RH-3). */
export function parseHeader(text: unknown, path: string): { name: string; value: string } {
  if (typeof text !== 'string') fail(path, 'must be a string of the form "Name: value"');
  const colon = text.indexOf(':');
  const name = colon < 0 ? '' : text.slice(0, colon).trim();
  if (!TOKEN.test(name)) fail(path, `'${text.slice(0, 100)}' is not of the form "Name: value"`);
  const value = text.slice(colon + 1).trim();
  if (/[\r\n\0]/.test(value)) fail(path, 'a header value cannot contain line breaks');
  return { name, value };
}

/** An R5 `parameter` {name, value}, held to the same rules as an HTTP header (RH-3). */
export function checkHeader(name: string, value: string, path: string): { name: string; value: string } {
  if (!TOKEN.test(name)) fail(`${path}.name`, `'${name.slice(0, 100)}' is not a valid HTTP header name`);
  if (/[\r\n\0]/.test(value)) fail(`${path}.value`, 'cannot contain line breaks');
  return { name, value };
}
