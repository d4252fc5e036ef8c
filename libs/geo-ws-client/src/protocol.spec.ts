import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
// The server's own constants: the SDK declares what it relies on itself (it has no
// dependencies), so this spec keeps the two in step.
import * as server from '../../geo-ws/src/protocol/wire.js';
import { GEO_SUBPROTOCOL, GeoClientCloseCode, GeoCloseCode, GeoFeature, GeoFrame } from './protocol.js';

/** The close codes of the table in docs/PROTOCOL.md, "Drain and close codes". */
function documentedCloseCodes(): number[] {
  const protocol = readFileSync(new URL('../../../docs/PROTOCOL.md', import.meta.url), 'utf8');
  const table = protocol.slice(protocol.indexOf('| close code | meaning |'));
  return [...table.slice(0, table.indexOf('\n\n')).matchAll(/^\| (\d{4}) \|/gm)].map((match) => Number(match[1]));
}

describe("the SDK's wire constants", () => {
  it("mirror the server's: close codes, frame names, subprotocol", () => {
    expect(GeoCloseCode).toEqual(server.GeoCloseCode);
    expect(GeoFrame).toEqual(server.GeoFrame);
    expect(GeoFeature).toEqual(server.GeoFeature);
    expect(GEO_SUBPROTOCOL).toBe(server.GEO_SUBPROTOCOL);
  });

  it('the close codes are those of docs/PROTOCOL.md', () => {
    const documented = documentedCloseCodes();
    expect(documented.length).toBeGreaterThanOrEqual(6);
    expect(Object.values(GeoCloseCode).sort()).toEqual([...documented].sort());
  });

  it("the client's own close codes are not the server's: 1000 or 4100-4199", () => {
    const serverCodes: number[] = [...Object.values(server.GeoCloseCode), ...documentedCloseCodes()];
    for (const code of Object.values(GeoClientCloseCode)) {
      expect(serverCodes).not.toContain(code);
      expect(code === 1000 || (code >= 4100 && code <= 4199)).toBe(true);
    }
  });
});
