// A real S3 server for tests: s3rver (tests/node/node_modules) behind a reverse proxy that verifies
// the AWS Signature Version 4 of every request, as S3 does (s3rver itself does not check V4
// signatures). The proxy answers 403 SignatureDoesNotMatch (S3's XML error) when the signature is
// wrong, 400 XAmzContentSHA256Mismatch when a signed payload hash does not match the body, and
// otherwise forwards the request to s3rver, streaming UNSIGNED-PAYLOAD bodies.
//
// Module:  const s3 = await startS3({ bucket: 'lake', secret: 'S3RVER' });  ... await s3.stop();
//          Outage: `await s3.stopServer()` stops s3rver and the proxy (connections to the endpoint
//          are refused); `await s3.restartServer()` starts them again, same endpoint, same data.
// CLI:     node s3.mjs --bucket B [--secret S] [--access-key A] [--max-put-bytes N] [--watch-stdin]
//          prints one JSON line {"endpoint":..., "bucket":..., "accessKey":..., "dir":...} and runs
//          until SIGTERM/SIGINT, or with --watch-stdin also until its stdin closes (so a crashed
//          parent that spawned it with a stdin pipe leaves nothing behind).
//
// Conditional writes: a PUT with `If-None-Match: *` of an existing key answers 412
// PreconditionFailed, as S3 does (s3rver itself ignores the header; the proxy checks).
//
// Fault injection (tests of retries): `POST <endpoint>/__sluice/fail-next?count=N&status=503&code=SlowDown`
// makes the next N S3 requests fail with that status and S3 error code (not signed, proxy only).
// `maxPutBytes` (--max-put-bytes) lowers S3's 5 GiB limit of a single PutObject (EntityTooLarge),
// so a test can prove that large files go through multipart upload.

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeModules, waitFor, Fatal, tail } from './harness.mjs';

/// s3rver knows one account; its access key id is fixed.
export const S3RVER_ACCESS_KEY = 'S3RVER';
/// S3 rejects requests whose x-amz-date is further than this from its clock.
const MAX_CLOCK_SKEW_MS = 15 * 60 * 1000;
const S3RVER_START_TIMEOUT_MS = 20000;
/// S3's largest single PutObject (5 GiB); larger objects need multipart upload.
const S3_MAX_PUT_BYTES = 5 * 1024 ** 3;

const sha256 = (data) => crypto.createHash('sha256').update(data).digest('hex');
const hmac = (key, data) => crypto.createHmac('sha256', key).update(data).digest();

/// RFC 3986 encoding as SigV4 wants it: everything but A-Z a-z 0-9 - _ . ~ is %XX (upper case).
function uriEncode(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g,
    (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

function xmlEscape(s) {
  return String(s).replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;',
    "'": '&apos;', '"': '&quot;' }[c]));
}

function sendError(res, status, code, message, extra = {}) {
  const fields = Object.entries(extra).map(([k, v]) => `<${k}>${xmlEscape(v)}</${k}>`).join('');
  const body = '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message>${fields}` +
    `<RequestId>${crypto.randomBytes(8).toString('hex')}</RequestId></Error>`;
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/// The canonical request of SigV4 for S3 (no double encoding of the path).
export function canonicalRequest(method, rawUrl, headers, signedHeaders, payloadHash) {
  const q = rawUrl.indexOf('?');
  const rawPath = q < 0 ? rawUrl : rawUrl.slice(0, q);
  const rawQuery = q < 0 ? '' : rawUrl.slice(q + 1);
  const uri = rawPath.split('/').map((seg) => uriEncode(decodeURIComponent(seg))).join('/');
  const query = rawQuery.split('&').filter((p) => p.length).map((p) => {
    const i = p.indexOf('=');
    const k = i < 0 ? p : p.slice(0, i);
    const v = i < 0 ? '' : p.slice(i + 1);
    return [uriEncode(decodeURIComponent(k)), uriEncode(decodeURIComponent(v))];
  }).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`).join('&');
  const canonHeaders = signedHeaders.map((h) => {
    const v = headers[h];
    if (v === undefined) throw new Error(`signed header ${h} is missing`);
    return `${h}:${String(v).trim().replace(/\s+/g, ' ')}\n`;
  }).join('');
  return [method, uri, query, canonHeaders, signedHeaders.join(';'), payloadHash].join('\n');
}

/// Checks the Authorization header of `req`. Returns null when valid, else [status, code, message, extra].
function checkSignature(req, accessKey, secret) {
  const auth = req.headers.authorization;
  if (!auth) return [403, 'AccessDenied', 'Anonymous access is denied'];
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/
    .exec(auth);
  if (!m) return [400, 'AuthorizationHeaderMalformed', `the authorization header is malformed: ${auth}`];
  const [, keyId, date, region, service, signedList, signature] = m;
  if (keyId !== accessKey) {
    return [403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.',
      { AWSAccessKeyId: keyId }];
  }
  if (service !== 's3') return [400, 'AuthorizationHeaderMalformed', `service must be s3, not ${service}`];
  const amzDate = req.headers['x-amz-date'];
  if (!amzDate || !/^\d{8}T\d{6}Z$/.test(amzDate) || !amzDate.startsWith(date)) {
    return [400, 'AuthorizationHeaderMalformed', `x-amz-date (${amzDate}) missing or not on ${date}`];
  }
  const when = Date.parse(`${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T` +
    `${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`);
  if (Math.abs(Date.now() - when) > MAX_CLOCK_SKEW_MS) {
    return [403, 'RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.'];
  }
  const signedHeaders = signedList.split(';');
  const payloadHash = req.headers['x-amz-content-sha256'];
  if (!payloadHash) {
    return [400, 'InvalidRequest', 'Missing required header for this request: x-amz-content-sha256'];
  }
  for (const required of ['host', 'x-amz-content-sha256', 'x-amz-date']) {
    if (!signedHeaders.includes(required)) {
      return [403, 'AccessDenied', `header ${required} must be signed (SignedHeaders=${signedList})`];
    }
  }
  let canonical;
  try {
    canonical = canonicalRequest(req.method, req.url, req.headers, signedHeaders, payloadHash);
  } catch (e) {
    return [403, 'SignatureDoesNotMatch', e.message];
  }
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  let key = hmac('AWS4' + secret, date);
  for (const part of [region, service, 'aws4_request']) key = hmac(key, part);
  const expected = hmac(key, stringToSign);
  if (!crypto.timingSafeEqual(expected, Buffer.from(signature, 'hex'))) {
    return [403, 'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. ' +
      'Check your key and signing method.',
      { AWSAccessKeyId: keyId, StringToSign: stringToSign, CanonicalRequest: canonical }];
  }
  return null;
}

async function startS3rver(dir, bucket) {
  const bin = path.join(nodeModules, 's3rver', 'bin', 's3rver.js');
  if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: run ./test.sh (it installs the npm modules)`);
  // s3rver encrypts ListObjectsV2 continuation tokens with DES, which OpenSSL 3 (node >= 17) only
  // offers through its legacy provider.
  const proc = spawn(process.execPath, ['--openssl-legacy-provider', bin, '-d', dir, '-a', '127.0.0.1', '-p', '0', '--silent',
    '--configure-bucket', bucket], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '', exited: null };
  proc.stdout.setEncoding('utf8').on('data', (d) => { out.stdout += d; });
  proc.stderr.setEncoding('utf8').on('data', (d) => { out.stderr += d; });
  // A test that ends without stop() must not leave s3rver running (node does not kill children).
  const killOnExit = () => {
    if (!out.exited) proc.kill('SIGKILL');
  };
  process.on('exit', killOnExit);
  const exit = new Promise((resolve) => proc.on('exit', (code, signal) => {
    out.exited = { code, signal };
    process.off('exit', killOnExit);
    resolve(out.exited);
  }));
  try {
    const port = await waitFor('s3rver to listen', () => {
      if (out.exited) throw new Fatal(`s3rver exited: ${JSON.stringify(out.exited)}\n${tail(out.stderr)}`);
      const m = /S3rver listening on [\d.]+:(\d+)/.exec(out.stdout);
      return m && Number(m[1]);
    }, S3RVER_START_TIMEOUT_MS, 20);
    return { proc, port, exit, out };
  } catch (e) {
    proc.kill('SIGKILL');
    throw e;
  }
}

/// Starts s3rver with `bucket` and the verifying proxy; resolves to { endpoint, bucket, accessKey,
/// dir, stats: {forwarded, rejected}, stop(), stopServer(), restartServer() }.
export async function startS3({ bucket = 'lake', secret = 'S3RVER', accessKey = S3RVER_ACCESS_KEY,
  maxPutBytes = S3_MAX_PUT_BYTES } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-s3-'));
  let upstream = await startS3rver(dir, bucket);
  const stats = { forwarded: 0, rejected: 0 };
  let faults = { count: 0, status: 503, code: 'SlowDown' };

  const forward = (req, res, body) => {
    const up = http.request({ host: '127.0.0.1', port: upstream.port, method: req.method, path: req.url,
      headers: req.headers }, (upRes) => {
      res.writeHead(upRes.statusCode, upRes.headers);
      upRes.pipe(res);
    });
    up.on('error', (e) => {
      if (!res.headersSent) sendError(res, 503, 'ServiceUnavailable', `s3rver: ${e.message}`);
      else res.destroy();
    });
    stats.forwarded++;
    if (body) up.end(body);
    else req.pipe(up);
  };

  // Conditional writes (`PUT` with `If-None-Match: *`), as S3 answers them since 2024-08:
  // 412 PreconditionFailed when the key exists. s3rver ignores the header, so the proxy decides:
  // the existence check and the in-flight mark happen in one turn of the event loop, so of two
  // concurrent conditional PUTs of one key exactly one is forwarded.
  const creating = new Set();
  const conditionalPut = (req, res, body) => {
    const key = decodeURIComponent(req.url.split('?')[0]);
    const file = path.join(dir, `${key.slice(1)}._S3rver_object`);
    if (creating.has(key) || fs.existsSync(file)) {
      stats.preconditionFailed = (stats.preconditionFailed ?? 0) + 1;
      if (!body) req.resume();
      sendError(res, 412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold',
        { Condition: 'If-None-Match' });
      return;
    }
    creating.add(key);
    res.on('close', () => creating.delete(key));
    forward(req, res, body);
  };

  const server = http.createServer((req, res) => {
    if (req.url.startsWith('/__sluice/fail-next')) {
      const q = new URL(req.url, 'http://x').searchParams;
      faults = { count: Number(q.get('count') || 1), status: Number(q.get('status') || 503),
        code: q.get('code') || 'SlowDown' };
      req.resume();
      res.end('ok\n');
      return;
    }
    const reject = (status, code, message, extra) => {
      stats.rejected++;
      req.resume(); // drain the body
      sendError(res, status, code, message, extra);
    };
    if (faults.count > 0) {
      faults.count--;
      reject(faults.status, faults.code, 'injected failure (__sluice/fail-next)');
      return;
    }
    let failure;
    try {
      failure = checkSignature(req, accessKey, secret);
    } catch (e) {
      failure = [400, 'InvalidRequest', e.message];
    }
    if (failure) {
      reject(...failure);
      return;
    }
    const isPartUpload = /[?&]partNumber=/.test(req.url);
    if (req.method === 'PUT' && !isPartUpload && Number(req.headers['content-length'] || 0) > maxPutBytes) {
      reject(400, 'EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size',
        { ProposedSize: req.headers['content-length'], MaxSizeAllowed: maxPutBytes });
      return;
    }
    const payloadHash = req.headers['x-amz-content-sha256'];
    const send = req.method === 'PUT' && req.headers['if-none-match'] === '*' && !isPartUpload
      ? conditionalPut : forward;
    if (payloadHash === 'UNSIGNED-PAYLOAD') {
      send(req, res, null);
    } else if (/^[0-9a-f]{64}$/.test(payloadHash)) {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const actual = sha256(body);
        if (actual !== payloadHash) {
          stats.rejected++;
          sendError(res, 400, 'XAmzContentSHA256Mismatch',
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
            { ClientComputedContentSHA256: payloadHash, S3ComputedContentSHA256: actual });
        } else {
          send(req, res, body);
        }
      });
    } else {
      reject(400, 'InvalidArgument', `unsupported x-amz-content-sha256: ${payloadHash}`);
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = server.address().port;
  const endpoint = `http://127.0.0.1:${port}`;

  /// Closes the proxy (its port refuses connections) and stops s3rver; the data dir stays.
  let down = null;
  const stopServer = () => {
    down ??= (async () => {
      await new Promise((resolve) => {
        server.close(resolve);
        server.closeAllConnections();
      });
      if (!upstream.out.exited) upstream.proc.kill('SIGTERM');
      await upstream.exit;
    })();
    return down;
  };
  /// After stopServer: starts s3rver on the same data dir and the proxy on the same port.
  const restartServer = async () => {
    if (!down) throw new Error('restartServer: the server is running');
    await down;
    upstream = await startS3rver(dir, bucket);
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    down = null;
  };
  let stopped = null;
  const stop = () => {
    stopped ??= (async () => {
      await stopServer();
      fs.rmSync(dir, { recursive: true, force: true });
    })();
    return stopped;
  };
  return { endpoint, bucket, accessKey, dir, stats, stop, stopServer, restartServer };
}

function parseArgs(argv) {
  const opts = {};
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--watch-stdin') {
      opts.watchStdin = true;
      continue;
    }
    const m = /^--(bucket|secret|access-key|max-put-bytes)(?:=(.*))?$/.exec(argv[i]);
    if (!m) {
      throw new Error(`unknown argument ${argv[i]} ` +
        '(use --bucket B --secret S --access-key A --max-put-bytes N --watch-stdin)');
    }
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new Error(`--${m[1]} needs a value`);
    const name = m[1].replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    opts[name] = name === 'maxPutBytes' ? Number(value) : value;
  }
  return opts;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const opts = parseArgs(process.argv.slice(2));
    const s3 = await startS3(opts);
    const shutdown = async () => {
      await s3.stop();
      process.exit(0);
    };
    process.on('SIGTERM', shutdown);
    process.on('SIGINT', shutdown);
    if (opts.watchStdin) process.stdin.on('end', shutdown).on('error', shutdown).resume();
    process.stdout.write(JSON.stringify({ endpoint: s3.endpoint, bucket: s3.bucket,
      accessKey: s3.accessKey, dir: s3.dir }) + '\n');
  } catch (e) {
    console.error(`s3.mjs: ${e.message}`);
    process.exit(1);
  }
}
