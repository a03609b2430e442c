// Verifies a Sigstore bundle offline with sigstore-js against a given trusted root.
// usage: node verify.mjs TRUSTED_ROOT.json BUNDLE.json ARTIFACT IDENTITY ISSUER
// Exit 0 = verified, 1 = rejected (message on stderr).
import { readFileSync } from 'node:fs';
import { bundleFromJSON } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { Verifier, toSignedEntity, toTrustMaterial } from '@sigstore/verify';

const [rootPath, bundlePath, artifactPath, identity, issuer] = process.argv.slice(2);
try {
  const root = TrustedRoot.fromJSON(JSON.parse(readFileSync(rootPath, 'utf8')));
  const verifier = new Verifier(toTrustMaterial(root), { ctlogThreshold: 1, tlogThreshold: 1 });
  const bundle = bundleFromJSON(JSON.parse(readFileSync(bundlePath, 'utf8')));
  const escaped = identity.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  verifier.verify(toSignedEntity(bundle, readFileSync(artifactPath)), {
    subjectAlternativeName: new RegExp(`^${escaped}$`),
    extensions: { issuer },
  });
  console.log('sigstore-js: verified');
} catch (e) {
  console.error(`sigstore-js: ${e.code ?? ''} ${e.message}`);
  process.exit(1);
}
