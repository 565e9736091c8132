// The portal's only script: keys and signatures stay in this browser.
// The private key is created or imported as a non-extractable WebCrypto
// Ed25519 key and kept in IndexedDB; the gateway only ever sees
// signatures. Where a browser's WebCrypto has no Ed25519, the audited
// @noble/ed25519 (served by the gateway, loaded only then) signs instead,
// and the seed itself is what IndexedDB keeps. No inline script anywhere:
// the CSP forbids it.
'use strict';
(function () {
  // Outside a secure context (http:// on an address that is not this
  // machine's) the browser gives no WebCrypto: say so, in the page's
  // language, rather than leave buttons that do nothing.
  if (!window.isSecureContext || !(window.crypto && window.crypto.subtle)) {
    const note = document.getElementById('insecure-context');
    if (note) {
      note.hidden = false;
    }
    document.querySelectorAll('main button, main input[type=submit]').forEach((b) => {
      b.disabled = true;
    });
    return;
  }
  const DB = 'consentry';
  const STORE = 'keys';
  // The log's keys as first seen on this device (trust on first use).
  const PINS = 'pins';
  // How far an entry's times may be from this device's clock.
  const CLOCK_SKEW_S = 300;
  const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  // PKCS#8 wrapping of a 32-byte Ed25519 seed (RFC 8410).
  const PKCS8_PREFIX = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65,
    0x70, 0x04, 0x22, 0x04, 0x20];

  function openDb() {
    return new Promise((resolve, reject) => {
      // Version 2 adds the pins; a version-1 database keeps its keys.
      const r = indexedDB.open(DB, 2);
      r.onupgradeneeded = () => {
        const names = r.result.objectStoreNames;
        if (!names.contains(STORE)) r.result.createObjectStore(STORE);
        if (!names.contains(PINS)) r.result.createObjectStore(PINS);
      };
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
  }

  async function putKey(id, key) {
    const db = await openDb();
    return new Promise((resolve, reject) => {
      const t = db.transaction(STORE, 'readwrite');
      t.objectStore(STORE).put(key, id);
      t.oncomplete = () => resolve();
      t.onerror = () => reject(t.error);
    });
  }

  async function getKey(id) {
    const db = await openDb();
    return new Promise((resolve, reject) => {
      const r = db.transaction(STORE).objectStore(STORE).get(id);
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
  }

  async function getPin() {
    const db = await openDb();
    return new Promise((resolve, reject) => {
      const r = db.transaction(PINS).objectStore(PINS).get('log');
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
  }

  // Keeps the log's keys unless some are kept already: a later page can
  // never replace them (there is no re-pinning; a changed key is only
  // ever warned about).
  async function pinIfAbsent(anchor) {
    const db = await openDb();
    return new Promise((resolve, reject) => {
      const t = db.transaction(PINS, 'readwrite');
      const store = t.objectStore(PINS);
      const r = store.get('log');
      let kept = anchor;
      r.onsuccess = () => {
        if (r.result === undefined) store.add(anchor, 'log'); else kept = r.result;
      };
      t.oncomplete = () => resolve(kept);
      t.onerror = () => reject(t.error);
    });
  }

  // The log's verifier key and witness policy a page serves, in one
  // canonical string (witness order does not matter; the set does).
  function anchorOf(data) {
    return JSON.stringify({
      logKey: data.logKey || '',
      witnesses: data.witnesses ? data.witnesses.split(' ').filter(Boolean).sort() : [],
      quorum: data.quorum ? Number(data.quorum) : null,
    });
  }

  // On the pages where a key comes to this device: keep the log's keys.
  async function pinServed() {
    const el = document.getElementById('log-anchor');
    if (el) await pinIfAbsent(anchorOf(el.dataset)).catch(() => undefined);
  }

  function base64(bytes) {
    let s = '';
    bytes.forEach((b) => { s += String.fromCharCode(b); });
    return btoa(s);
  }

  // The recovery code (participant/recovery.rs): Crockford base32 of the
  // seed and a 20-bit SHA-256 checksum, four zero bits of padding.
  async function decodeRecovery(code) {
    const bits = [];
    for (const raw of code.toUpperCase()) {
      if (raw === '-' || raw.trim() === '') continue;
      const c = raw === 'O' ? '0' : (raw === 'I' || raw === 'L') ? '1' : raw;
      const v = ALPHABET.indexOf(c);
      if (v < 0) throw new Error('character');
      for (let i = 4; i >= 0; i--) bits.push((v >> i) & 1);
    }
    if (bits.length !== 280) throw new Error('length');
    const seed = new Uint8Array(32);
    for (let i = 0; i < 32; i++) {
      let b = 0;
      for (let j = 0; j < 8; j++) b = (b << 1) | bits[i * 8 + j];
      seed[i] = b;
    }
    let sum = 0;
    for (let i = 256; i < 276; i++) sum = (sum << 1) | bits[i];
    if (bits.slice(276).some((b) => b)) throw new Error('checksum');
    const d = new Uint8Array(await crypto.subtle.digest('SHA-256', seed));
    const want = (d[0] << 12) | (d[1] << 4) | (d[2] >> 4);
    if (sum !== want) throw new Error('checksum');
    return seed;
  }

  // Whether this browser's WebCrypto does Ed25519, probed once on first use.
  let native = null;
  async function hasNativeEd25519() {
    if (native === null) {
      native = await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])
        .then(() => true, () => false);
    }
    return native;
  }

  let nobleModule = null;
  async function noble() {
    if (!nobleModule) nobleModule = await import('/portal/static/vendor/noble-ed25519.js');
    return nobleModule;
  }

  function pkcs8(seed) {
    const pk8 = new Uint8Array(PKCS8_PREFIX.length + 32);
    pk8.set(PKCS8_PREFIX, 0);
    pk8.set(seed, PKCS8_PREFIX.length);
    return pk8;
  }

  // The key to keep: a non-extractable CryptoKey, or (fallback) the seed.
  async function importSeed(seed) {
    if (!(await hasNativeEd25519())) return { seed: seed.slice() };
    const pk8 = pkcs8(seed);
    const key = await crypto.subtle.importKey('pkcs8', pk8, { name: 'Ed25519' }, false, ['sign']);
    pk8.fill(0);
    return key;
  }

  async function signWith(key, bytes) {
    if (key instanceof CryptoKey) {
      return new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, key, bytes));
    }
    return (await noble()).signAsync(bytes, key.seed);
  }

  async function publicKeyOf(seed) {
    if (!(await hasNativeEd25519())) return (await noble()).getPublicKeyAsync(seed);
    // WebCrypto gives the public half of an imported seed only through
    // an extractable copy's JWK: made here and dropped at once.
    const pk8 = pkcs8(seed);
    const tmp = await crypto.subtle.importKey('pkcs8', pk8, { name: 'Ed25519' }, true, ['sign']);
    pk8.fill(0);
    const jwk = await crypto.subtle.exportKey('jwk', tmp);
    const b64 = jwk.x.replace(/-/g, '+').replace(/_/g, '/');
    return unbase64(b64 + '='.repeat((4 - b64.length % 4) % 4));
  }

  function showError(form, id) {
    const input = form.querySelector('[aria-describedby~="' + id + '"]') || form.querySelector('input');
    const el = document.getElementById(id);
    if (el) el.hidden = false;
    if (input) {
      input.setAttribute('aria-invalid', 'true');
      input.focus();
    }
  }

  function clearErrors(form) {
    form.querySelectorAll('.error[role="alert"]').forEach((e) => { e.hidden = true; });
    form.querySelectorAll('[aria-invalid]').forEach((e) => e.removeAttribute('aria-invalid'));
  }

  async function postJson(path, body) {
    const r = await fetch(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      credentials: 'same-origin',
    });
    return { ok: r.ok, status: r.status, body: await r.json().catch(() => null) };
  }

  function unbase64(s) {
    const raw = atob(s);
    const out = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    parts.forEach((p) => { out.set(p, at); at += p.length; });
    return out;
  }

  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  }

  function equal(a, b) {
    return a.length === b.length && a.every((x, i) => x === b[i]);
  }

  async function ed25519Verify(publicKey, signature, message) {
    if (!(await hasNativeEd25519())) return (await noble()).verifyAsync(signature, message, publicKey);
    const key = await crypto.subtle.importKey('raw', publicKey, { name: 'Ed25519' }, false, ['verify']);
    return crypto.subtle.verify({ name: 'Ed25519' }, key, signature, message);
  }

  // A C2SP signed-note checkpoint, opened under the log's verifier key
  // (`name+hash+base64(0x01 || key)`): the log's own signature line must
  // verify. Returns {size, root} or throws.
  async function openCheckpoint(note, vkey) {
    // The key's base64 may itself hold '+': split at the first two only.
    const a = vkey.indexOf('+');
    const b = vkey.indexOf('+', a + 1);
    if (a < 0 || b < 0) throw new Error('log key');
    const name = vkey.slice(0, a);
    const hash = vkey.slice(a + 1, b);
    const keyB64 = vkey.slice(b + 1);
    const keyBytes = unbase64(keyB64);
    if (keyBytes.length !== 33 || keyBytes[0] !== 1) throw new Error('log key');
    const split = note.lastIndexOf('\n\n');
    if (split < 0) throw new Error('note');
    const text = note.slice(0, split + 1);
    const textBytes = new TextEncoder().encode(text);
    let ok = false;
    for (const line of note.slice(split + 2).split('\n')) {
      if (!line.startsWith('\u2014 ' + name + ' ')) continue;
      const sig = unbase64(line.slice(name.length + 3));
      const id = Array.from(sig.slice(0, 4), (b) => b.toString(16).padStart(2, '0')).join('');
      if (sig.length !== 68 || id !== hash) continue;
      if (await ed25519Verify(keyBytes.slice(1), sig.slice(4), textBytes)) ok = true;
    }
    if (!ok) throw new Error('checkpoint signature');
    const lines = text.split('\n');
    const size = Number(lines[1]);
    const root = unbase64(lines[2]);
    if (!Number.isSafeInteger(size) || root.length !== 32) throw new Error('checkpoint body');
    return { size, root };
  }

  // C2SP tlog-cosignature: how many of `keys` (cosignature/v1 verifier
  // keys, `name+hash+base64(0x04 || key)`) cosigned the checkpoint.
  async function cosigners(note, keys) {
    const split = note.lastIndexOf('\n\n');
    const text = note.slice(0, split + 1);
    const lines = note.slice(split + 2).split('\n');
    let count = 0;
    for (const vkey of keys) {
      const a = vkey.indexOf('+');
      const b = vkey.indexOf('+', a + 1);
      const name = vkey.slice(0, a);
      const hash = vkey.slice(a + 1, b);
      const key = unbase64(vkey.slice(b + 1));
      if (key.length !== 33 || key[0] !== 4) continue;
      for (const line of lines) {
        if (!line.startsWith('\u2014 ' + name + ' ')) continue;
        const blob = unbase64(line.slice(name.length + 3));
        const id = Array.from(blob.slice(0, 4), (x) => x.toString(16).padStart(2, '0')).join('');
        if (blob.length !== 76 || id !== hash) continue;
        let ts = 0n;
        blob.slice(4, 12).forEach((x) => { ts = (ts << 8n) | BigInt(x); });
        const msg = new TextEncoder().encode('cosignature/v1\ntime ' + ts + '\n' + text);
        if (await ed25519Verify(key.slice(1), blob.slice(12), msg)) { count += 1; break; }
      }
    }
    return count;
  }

  // RFC 9162 section 2.1.3.2: the entry at `index` is in the tree.
  async function verifyInclusion(proof, cp) {
    const index = proof.index;
    if (!Number.isSafeInteger(index) || index >= cp.size) return false;
    let r = await sha256(concat([0], unbase64(proof.entry)));
    let fn = index;
    let sn = cp.size - 1;
    for (const b64 of proof.inclusion) {
      const p = unbase64(b64);
      if (sn === 0 || p.length !== 32) return false;
      if (fn % 2 === 1 || fn === sn) {
        r = await sha256(concat([1], p, r));
        while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      } else {
        r = await sha256(concat([1], r, p));
      }
      fn = Math.floor(fn / 2);
      sn = Math.floor(sn / 2);
    }
    return sn === 0 && equal(r, cp.root);
  }

  const lang = document.documentElement.lang || 'en';

  // A form sent back with errors: the summary, with links to each field,
  // is where the reader (and a screen reader) starts.
  const errors = document.getElementById('errors');
  if (errors) errors.focus();

  // Times come in UTC; show them in this device's time zone, in the
  // page's language.
  if (window.Intl) {
    const fmt = new Intl.DateTimeFormat(lang, { dateStyle: 'long', timeStyle: 'short' });
    document.querySelectorAll('time[datetime]').forEach((t) => {
      const d = new Date(t.getAttribute('datetime'));
      if (!Number.isNaN(d.getTime())) t.textContent = fmt.format(d);
    });
  }

  // The timeline's "verified" marks: computed here, from the proofs and
  // the signed checkpoint, never taken from the server's word.
  const timeline = document.getElementById('timeline');
  if (timeline) {
    (async () => {
      const d = timeline.dataset;
      const verified = new Set();
      let fewWitnesses = false;
      let keyChanged = false;
      try {
        // The keys this page serves count only if they are the ones kept
        // here at first use: a server (or whoever serves its pages) that
        // swapped the log's key could otherwise vouch for its own log.
        const served = anchorOf(d);
        const kept = await pinIfAbsent(served);
        if (kept !== served) {
          keyChanged = true;
          throw new Error('log key changed');
        }
        const trusted = JSON.parse(kept);
        const r = await fetch('/v1/me/disclosures?limit=' + d.limit, { credentials: 'same-origin' });
        const page = await r.json();
        const cp = await openCheckpoint(page.checkpoint, trusted.logKey);
        if (trusted.quorum && (await cosigners(page.checkpoint, trusted.witnesses)) < trusted.quorum) {
          fewWitnesses = true;
          throw new Error('witnesses');
        }
        for (const item of page.items) {
          if (await verifyInclusion(item.proof, cp)) verified.add(String(item.proof.index));
        }
      } catch (e) {
        // Every item stays unverified, and says so; the reason is kept
        // for whoever looks.
        timeline.dataset.error = String(e);
      }
      let failed = 0;
      timeline.querySelectorAll('li[data-index]').forEach((li) => {
        const mark = li.querySelector('.proof');
        const ok = verified.has(li.dataset.index);
        if (!ok) failed += 1;
        mark.dataset.state = ok ? 'verified' : 'failed';
        mark.textContent = ok ? d.verified
          : (keyChanged ? d.keyChanged : (fewWitnesses ? d.fewWitnesses : d.failed));
      });
      const summary = document.getElementById('verify-summary');
      summary.textContent = failed ? d.someFailed : d.allVerified;
      if (keyChanged) {
        const warning = document.getElementById('log-changed');
        warning.hidden = false;
        warning.focus();
      }
    })();
  }

  const signin = document.getElementById('signin');
  if (signin) {
    signin.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearErrors(signin);
      const id = signin.elements.participant.value.trim();
      const key = id ? await getKey(id) : undefined;
      if (!key) { showError(signin, 'participant-error'); return; }
      const ch = await postJson('/v1/participant/challenge', { participant: id });
      // Sign only a sign-in for this gateway and this person.
      const expected = 'consentry-signin-v1\n' + location.origin + '\n' + id + '\n' +
        (ch.body && ch.body.challenge) + '\n';
      if (!ch.ok || ch.body.sign !== expected) { showError(signin, 'signin-refused'); return; }
      const sig = await signWith(key, new TextEncoder().encode(expected));
      const r = await postJson('/v1/participant/session',
        { participant: id, challenge: ch.body.challenge, signature: base64(sig) });
      if (r.ok) {
        await pinServed();
        location.assign('/portal/' + lang + '/');
      } else { showError(signin, 'signin-refused'); }
    });
  }

  function decodeEntry(b64) {
    const bytes = unbase64(b64);
    return { bytes, json: JSON.parse(new TextDecoder().decode(bytes)) };
  }

  function sameList(a, b) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length &&
      a.every((x, i) => x === b[i]);
  }

  // A space-separated list attribute; undefined when the page gave none.
  function listOf(attr) {
    if (attr === undefined) return undefined;
    return attr.split(' ').filter(Boolean);
  }

  function isObject(x) {
    return x !== null && typeof x === 'object' && !Array.isArray(x);
  }

  function nearNow(t) {
    return Number.isSafeInteger(t) && Math.abs(t - Date.now() / 1000) <= CLOCK_SKEW_S;
  }

  // Agencies named, no classes: all the portal ever prepares.
  function partiesAre(p, attr) {
    return isObject(p) && Object.keys(p).sort().join() === 'agencies,classes' &&
      sameList(p.classes, []) && sameList(p.agencies, listOf(attr));
  }

  // Each kind's fields besides `type`, `v` and `participant`: a check
  // that every one is exactly what the page shows (its data attributes,
  // the fields the sentence was made from) or, for a time, now.
  const SHOWN = {
    'consent.granted': (e, d) => ({
      consent_id: e.consent_id === d.consentId,
      holders: partiesAre(e.holders, d.holders),
      recipients: partiesAre(e.recipients, d.recipients),
      categories: sameList(e.categories, listOf(d.categories)),
      purposes: sameList(e.purposes, listOf(d.purposes)),
      effective_at: nearNow(e.effective_at),
      expires_at: d.expiresAt === undefined ? e.expires_at === null : e.expires_at === Number(d.expiresAt),
      signed_at: nearNow(e.signed_at),
      language: e.language === d.language,
    }),
    'consent.revoked': (e, d) => ({
      consent_id: e.consent_id === d.consentId,
      at: nearNow(e.at),
      // Only an agency helping names itself here; never the person.
      assisted_by: e.assisted_by === null || e.assisted_by === undefined,
    }),
    'grievance.filed': (e, d) => ({
      grievance_id: e.grievance_id === d.grievanceId,
      decision_id: e.decision_id === d.decisionId,
      reason: e.reason === d.reason,
      at: nearNow(e.at),
    }),
    'participant.rotation_cancelled': (e, d) => ({
      key_id: e.key_id === d.rotationKeyId,
      at: nearNow(e.at),
    }),
  };

  // The first field of the prepared entry that is not what the page
  // shows, or that the page does not show at all; null when it matches.
  function mismatch(e, d) {
    if (!isObject(e)) return 'entry';
    if (e.type !== d.kind || !SHOWN[d.kind]) return 'type';
    if (e.v !== 1) return 'v';
    if (e.participant !== d.participant) return 'participant';
    const checks = SHOWN[d.kind](e, d);
    for (const [field, ok] of Object.entries(checks)) if (!ok) return field;
    const known = new Set(['type', 'v', 'participant', ...Object.keys(checks)]);
    const extra = Object.keys(e).find((k) => !known.has(k));
    return extra === undefined ? null : extra;
  }

  // Sign the entry the page shows as a sentence: only the participant's
  // own, of the kind the page says, and exactly the fields the sentence
  // was made from. A compromised page could still lie in both the
  // sentence and the fields; what it cannot do is show one thing and
  // have another signed.
  const signEntry = document.getElementById('sign-entry');
  if (signEntry) {
    signEntry.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearErrors(signEntry);
      const d = signEntry.dataset;
      const button = signEntry.querySelector('button');
      const key = await getKey(d.participant);
      if (!key) { showError(signEntry, 'sign-nokey'); return; }
      let entry;
      let wrong;
      try {
        entry = decodeEntry(d.entry);
        wrong = mismatch(entry.json, d);
      } catch (e) {
        wrong = 'entry';
      }
      if (wrong !== null) {
        signEntry.querySelector('#sign-mismatch .detail').textContent = wrong;
        showError(signEntry, 'sign-mismatch');
        return;
      }
      button.disabled = true;
      const sig = await signWith(key, entry.bytes);
      const r = await postJson('/v1/entries',
        { entry: d.entry, sigs: [{ keyid: d.keyId, sig: base64(sig) }] });
      if (r.ok) { location.assign(d.done); return; }
      button.disabled = false;
      signEntry.querySelector('#sign-error .detail').textContent =
        (r.body && (r.body.detail || r.body.title)) || String(r.status);
      showError(signEntry, 'sign-error');
    });
  }

  // Enrolment at an agency's intake: the seed is made here, shown once as
  // the recovery code, and kept only as a non-extractable key.
  const enrol = document.getElementById('enrol');
  if (enrol) {
    enrol.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearErrors(enrol);
      const agency = enrol.elements.agency.value;
      if (!agency) { showError(enrol, 'agency-error'); return; }
      const seed = crypto.getRandomValues(new Uint8Array(32));
      const key = await importSeed(seed);
      const publicKey = await publicKeyOf(seed);
      const started = await postJson('/v1/participant/intakes',
        { agency, public_key: base64(publicKey) });
      if (!started.ok) { showError(enrol, 'enrol-refused'); return; }
      const s = started.body;
      const entry = decodeEntry(s.entry);
      if (entry.json.type !== 'participant.enrolled' || entry.json.public_key !== base64(publicKey) ||
          entry.json.enrolled_by !== agency || entry.json.participant !== s.participant) {
        showError(enrol, 'enrol-refused');
        return;
      }
      const sig = await signWith(key, entry.bytes);
      const signed = await postJson('/v1/participant/intakes/' + s.intake + '/signature',
        { signature: base64(sig) });
      if (!signed.ok) { showError(enrol, 'enrol-refused'); return; }
      await putKey(s.participant, key);
      await pinServed();
      const code = await encodeRecovery(seed);
      seed.fill(0);
      enrol.hidden = true;
      document.getElementById('enrol-intro').hidden = true;
      const done = document.getElementById('enrolled');
      document.getElementById('intake-code').textContent = s.intake;
      document.getElementById('participant-id').textContent = s.participant;
      document.getElementById('recovery-code').textContent = code;
      drawQr(document.getElementById('recovery-qr'), code.replace(/-/g, ''));
      done.hidden = false;
      document.getElementById('enrolled-title').focus();
      watchIntake(s.intake);
    });
  }

  // The inverse of decodeRecovery: seed, 20-bit checksum, four zero bits,
  // in groups of four.
  async function encodeRecovery(seed) {
    const d = new Uint8Array(await crypto.subtle.digest('SHA-256', seed));
    const bits = [];
    seed.forEach((b) => { for (let i = 7; i >= 0; i--) bits.push((b >> i) & 1); });
    const sum = (d[0] << 12) | (d[1] << 4) | (d[2] >> 4);
    for (let i = 19; i >= 0; i--) bits.push((sum >> i) & 1);
    for (let i = 0; i < 4; i++) bits.push(0);
    let out = '';
    for (let i = 0; i < bits.length; i += 5) {
      let v = 0;
      for (let j = 0; j < 5; j++) v = (v << 1) | bits[i + j];
      out += ALPHABET[v];
    }
    return out.match(/.{1,4}/g).join('-');
  }

  function watchIntake(code) {
    const status = document.getElementById('intake-status');
    status.textContent = status.dataset.waiting;
    const poll = async () => {
      const r = await fetch('/v1/participant/intakes/' + code, { credentials: 'same-origin' })
        .catch(() => null);
      const body = r && await r.json().catch(() => null);
      if (r && r.status === 404) { status.textContent = status.dataset.expired; return; }
      if (body && body.status === 'enrolled') {
        status.textContent = status.dataset.enrolled;
        document.getElementById('to-signin').hidden = false;
        return;
      }
      setTimeout(poll, 1500);
    };
    poll();
  }

  function drawQr(figure, text) {
    if (typeof window.qrcode !== 'function') return;
    const qr = window.qrcode(0, 'M');
    qr.addData(text, 'Alphanumeric');
    qr.make();
    const n = qr.getModuleCount();
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 ' + (n + 8) + ' ' + (n + 8));
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', figure.dataset.label);
    svg.setAttribute('class', 'qr');
    let path = '';
    for (let r = 0; r < n; r++) {
      for (let c = 0; c < n; c++) if (qr.isDark(r, c)) path += 'M' + (c + 4) + ' ' + (r + 4) + 'h1v1h-1z';
    }
    const bg = document.createElementNS(ns, 'rect');
    bg.setAttribute('width', '100%');
    bg.setAttribute('height', '100%');
    bg.setAttribute('fill', '#ffffff');
    const p = document.createElementNS(ns, 'path');
    p.setAttribute('d', path);
    p.setAttribute('fill', '#000000');
    svg.append(bg, p);
    figure.prepend(svg);
  }

  const print = document.getElementById('print');
  if (print) print.addEventListener('click', () => window.print());

  const restore = document.getElementById('restore');
  if (restore) {
    restore.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearErrors(restore);
      const id = restore.elements.participant.value.trim();
      let seed;
      try { seed = await decodeRecovery(restore.elements.code.value); } catch (e) {
        showError(restore, 'code-error');
        return;
      }
      const key = await importSeed(seed);
      seed.fill(0);
      await putKey(id, key);
      await pinServed();
      location.assign('/portal/' + lang + '/signin?restored=1');
    });
  }
}());
