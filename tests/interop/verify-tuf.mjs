// sigstore-js high-level verify() through airgate's private TUF repository.
// usage: node verify-tuf.mjs BASE_URL NAME TUF_ROOT_JSON CACHE_DIR IDENTITY ISSUER
//
// Fetches BASE_URL/artifacts/NAME and BASE_URL/artifacts/NAME.sigs, then runs
// sigstore.verify() on every bundle of the .sigs array with
// tufMirrorURL = BASE_URL/tuf (trusted root bootstrapped from TUF_ROOT_JSON,
// cached in CACHE_DIR), and once more on a tampered copy of the artifact with
// airgate's message-signature bundle. For airgate's DSSE attestation (the
// VSA) sigstore-js verifies the envelope; matching its in-toto subject to the
// artifact is the caller's job, done here as a client would, and a one-byte
// tamper of the envelope's signature must fail. One JSON report on stdout.
import { createHash } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { verify } from 'sigstore';

const [base, name, rootPath, cachePath, identity, issuer] = process.argv.slice(2);
const options = {
  tufMirrorURL: `${base}/tuf`,
  tufRootPath: rootPath,
  tufCachePath: cachePath,
  certificateIdentityURI: identity,
  certificateIssuer: issuer,
};

function listFiles(dir, prefix = '') {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    return statSync(path).isDirectory()
      ? listFiles(path, `${prefix}${entry}/`)
      : [`${prefix}${entry}`];
  });
}

async function attempt(bundle, data) {
  try {
    // verify(bundle, options) for envelopes, verify(bundle, data, options) for signatures.
    await (data === undefined ? verify(bundle, options) : verify(bundle, data, options));
    return { ok: true };
  } catch (e) {
    return { ok: false, error: `${e.code ?? e.name}: ${e.message}` };
  }
}

const url = `${base}/artifacts/${name.split('/').map(encodeURIComponent).join('/')}`;
const artifactResponse = await fetch(url);
const sigsResponse = await fetch(`${url}.sigs`);
const report = {
  artifactStatus: artifactResponse.status,
  sigsStatus: sigsResponse.status,
  bundles: [],
};
if (artifactResponse.ok && sigsResponse.ok) {
  const artifact = Buffer.from(await artifactResponse.arrayBuffer());
  const sigs = await sigsResponse.json();
  report.artifactBytes = artifact.length;
  for (const bundle of sigs) {
    report.bundles.push(await attempt(bundle, artifact));
  }
  const signature = sigs.filter((b) => b.messageSignature).pop();
  if (signature) {
    const tampered = Buffer.from(artifact);
    tampered[0] ^= 1;
    report.tampered = await attempt(signature, tampered);
  }
  const attestation = sigs.filter((b) => b.dsseEnvelope).pop();
  if (attestation) {
    report.attestation = await attempt(attestation);
    const statement = JSON.parse(Buffer.from(attestation.dsseEnvelope.payload, 'base64'));
    const digest = createHash('sha256').update(artifact).digest('hex');
    report.attestationPredicateType = statement.predicateType;
    report.attestationSubjectMatches = statement.subject.some((s) => s.digest?.sha256 === digest);
    const forged = structuredClone(attestation);
    const sig = Buffer.from(forged.dsseEnvelope.signatures[0].sig, 'base64');
    sig[sig.length - 1] ^= 1;
    forged.dsseEnvelope.signatures[0].sig = sig.toString('base64');
    report.attestationTampered = await attempt(forged);
  }
  report.cache = listFiles(cachePath).sort();
}
console.log(JSON.stringify(report));
