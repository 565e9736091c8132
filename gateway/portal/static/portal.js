// The portal's only script: keys and signatures stay in this browser.
// The private key is created or imported as a non-extractable WebCrypto
// Ed25519 key and kept in IndexedDB; the gateway only ever sees
// signatures. No inline script anywhere: the CSP forbids it.
'use strict';
(function () {
  const DB = 'consentry';
  const STORE = 'keys';
  const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  // PKCS#8 wrapping of a 32-byte Ed25519 seed (RFC 8410).
  const PKCS8_PREFIX = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65,
    0x70, 0x04, 0x22, 0x04, 0x20];

  function openDb() {
    return new Promise((resolve, reject) => {
      const r = indexedDB.open(DB, 1);
      r.onupgradeneeded = () => r.result.createObjectStore(STORE);
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

  async function importSeed(seed) {
    const pk8 = new Uint8Array(PKCS8_PREFIX.length + 32);
    pk8.set(PKCS8_PREFIX, 0);
    pk8.set(seed, PKCS8_PREFIX.length);
    return crypto.subtle.importKey('pkcs8', pk8, { name: 'Ed25519' }, false, ['sign']);
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

  const lang = document.documentElement.lang || 'en';

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
      const sig = new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, key,
        new TextEncoder().encode(expected)));
      const r = await postJson('/v1/participant/session',
        { participant: id, challenge: ch.body.challenge, signature: base64(sig) });
      if (r.ok) { location.assign('/portal/' + lang + '/'); } else { showError(signin, 'signin-refused'); }
    });
  }

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
      location.assign('/portal/' + lang + '/signin?restored=1');
    });
  }
}());
