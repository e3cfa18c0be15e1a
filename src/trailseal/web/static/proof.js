// Checks an entry's inclusion in the log here, in the browser, with WebCrypto only:
//  1. the leaf hash is SHA-256(0x00 || the entry's canonical bytes) (RFC 9162 2.1.1);
//  2. the inclusion proof folds from that leaf to a root (RFC 9162 2.1.3.2);
//  3. the root and size are those of the signed checkpoint (C2SP tlog-checkpoint);
//  4. the checkpoint's Ed25519 signature verifies with the log's key (C2SP signed-note).
// Nothing here trusts the server's own verdict: it only supplies bytes to check.
"use strict";

(async () => {
  const data = JSON.parse(document.getElementById("proof-data").textContent);
  const result = document.getElementById("proof-result");
  const list = document.getElementById("proof-steps");
  const encoder = new TextEncoder();

  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  const unhex = (text) => Uint8Array.from(text.match(/../g) || [], (h) => parseInt(h, 16));
  const unbase64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  const join = (...parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const part of parts) { out.set(part, at); at += part.length; }
    return out;
  };
  const sha256 = async (...parts) =>
    new Uint8Array(await crypto.subtle.digest("SHA-256", join(...parts)));
  const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

  const steps = [];
  const step = (ok, text) => {
    steps.push(ok);
    const item = document.createElement("li");
    item.className = ok ? "ok" : "bad";
    item.textContent = (ok ? "\u2713 " : "\u2717 ") + text;
    list.appendChild(item);
    return ok;
  };
  const finish = (ok, text) => {
    result.className = "proof " + (ok ? "ok" : "bad");
    result.textContent = text;
    result.dataset.verified = ok ? "true" : "false";
  };

  try {
    // 1. The leaf.
    const leaf = await sha256(new Uint8Array([0]), unbase64(data.entry));
    step(hex(leaf) === data.leaf_hash, `leaf hash of the entry's bytes is ${hex(leaf).slice(0, 16)}\u2026, as stored`);

    // 2. The proof, folded to a root. Halving with arithmetic keeps indexes above 2^31 exact.
    let fn = data.index;
    let sn = data.size - 1;
    let root = leaf;
    let folded = data.index < data.size;
    for (const node of data.proof.map(unhex)) {
      if (sn === 0) { folded = false; break; }
      if (fn % 2 === 1 || fn === sn) {
        root = await sha256(new Uint8Array([1]), node, root);
        if (fn % 2 === 0) {
          while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
        }
      } else {
        root = await sha256(new Uint8Array([1]), root, node);
      }
      fn = Math.floor(fn / 2);
      sn = Math.floor(sn / 2);
    }
    step(folded && sn === 0, `the ${data.proof.length} proof hashes fold to root ${hex(root).slice(0, 16)}\u2026`);

    // 3. The checkpoint names that root and size.
    const [body, signatures = ""] = data.checkpoint.split("\n\n");
    const lines = body.split("\n");
    const signedRoot = unbase64(lines[2]);
    step(Number(lines[1]) === data.size && same(signedRoot, root),
      `the checkpoint of ${lines[0]} signs size ${lines[1]} and that root`);

    // 4. The signature, with the key named in the verifier key (name+keyid+base64(0x01||key)).
    // name+keyid+base64: the base64 may itself hold '+', so split at the first two only.
    const first = data.vkey.indexOf("+");
    const second = data.vkey.indexOf("+", first + 1);
    const [name, keyId, keyText] = [
      data.vkey.slice(0, first), data.vkey.slice(first + 1, second), data.vkey.slice(second + 1),
    ];
    const key = unbase64(keyText);
    const expectedId = (await sha256(encoder.encode(name + "\n"), key)).slice(0, 4);
    const line = signatures.split("\n").find((l) => l.startsWith("\u2014 " + name + " "));
    let signed = false;
    if (line && key[0] === 1 && hex(expectedId) === keyId) {
      const signature = unbase64(line.slice(name.length + 3));
      if (same(signature.slice(0, 4), expectedId)) {
        try {
          const publicKey = await crypto.subtle.importKey("raw", key.slice(1), { name: "Ed25519" }, false, ["verify"]);
          signed = await crypto.subtle.verify({ name: "Ed25519" }, publicKey, signature.slice(4), encoder.encode(body + "\n"));
        } catch (error) {
          step(false, `this browser cannot check Ed25519 signatures (${error.name}); compare the checkpoint with trailseal checkpoint`);
        }
      }
    }
    step(signed, `the checkpoint's Ed25519 signature verifies with key ${name}+${keyId}`);

    if (steps.every(Boolean)) {
      finish(true, `Verified in your browser: entry ${data.index} is in the log of ${data.size.toLocaleString()} entries signed by ${name}.`);
    } else {
      finish(false, "NOT verified: a step above failed. Do not rely on this entry; run trailseal verify.");
    }
  } catch (error) {
    finish(false, `NOT verified: ${error.message}`);
  }
})();
