// sigstore-js high-level verify() through airgate's private TUF repository.
// usage: node verify-tuf.mjs BASE_URL NAME TUF_ROOT_JSON CACHE_DIR IDENTITY ISSUER
//
// Fetches BASE_URL/artifacts/NAME and BASE_URL/artifacts/NAME.sigs, then runs
// sigstore.verify() on every bundle of the .sigs array with
// tufMirrorURL = BASE_URL/tuf (trusted root bootstrapped from TUF_ROOT_JSON,
// cached in CACHE_DIR), and once more on a tampered copy of the artifact with
// the last (airgate's) bundle. Prints one JSON report on stdout; exit 0.
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
    await verify(bundle, data, options);
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
  if (sigs.length > 0) {
    const tampered = Buffer.from(artifact);
    tampered[0] ^= 1;
    report.tampered = await attempt(sigs[sigs.length - 1], tampered);
  }
  report.cache = listFiles(cachePath).sort();
}
console.log(JSON.stringify(report));
