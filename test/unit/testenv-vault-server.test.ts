// The test environment runs against OpenBao or HashiCorp Vault (VSO_BAO_BIN); which one it is decides how
// the audit device is enabled and which server-specific tests are excluded, so the recognition must be exact.
import { parseVaultServerVersion } from '../../testenv/environment.js';

test('OpenBao and HashiCorp Vault are told apart by the first word of `version`', () => {
  expect(parseVaultServerVersion('OpenBao v2.7.2 (9e0a0d3c3504a0a00b45e61355afac5e35c78379), committed 2026-10-26T20:32:27Z\n'))
    .toEqual({ product: 'openbao', version: '2.7.2' });
  expect(parseVaultServerVersion('Vault v1.21.4 (abcdef0123), built 2026-03-01T00:00:00Z\n')).toEqual({ product: 'vault', version: '1.21.4' });
  expect(parseVaultServerVersion('Vault v1.21.4+ent (abcdef0123), built 2026-03-01T00:00:00Z')).toEqual({ product: 'vault', version: '1.21.4+ent' });
});

test('anything else is not guessed at: the environment then refuses to start, naming the binary', () => {
  expect(parseVaultServerVersion('')).toBeUndefined();
  expect(parseVaultServerVersion('bao: command not found')).toBeUndefined();
  expect(parseVaultServerVersion('Vaultwarden 1.30.0')).toBeUndefined();
});
