// Runs the WebAuthn ceremony of a login step: reads the options the server
// put in #webauthn[data-challenge], calls navigator.credentials.create or
// .get, and posts the credential (as JSON, binary values base64url) or the
// browser's error name back with the step's form. Without JavaScript the
// block stays hidden and the page's <noscript> message explains why.
(function () {
  'use strict';
  var box = document.getElementById('webauthn');
  if (!box) {
    return;
  }
  var form = document.getElementById('webauthn-form');
  var start = document.getElementById('webauthn-start');
  var status = document.getElementById('webauthn-status');
  box.hidden = false;
  if (!window.PublicKeyCredential || !navigator.credentials) {
    status.textContent = box.getAttribute('data-unsupported');
    start.disabled = true;
    return;
  }
  var challenge = JSON.parse(box.getAttribute('data-challenge'));

  function decode(s) {
    var b64 = s.replace(/-/g, '+').replace(/_/g, '/');
    while (b64.length % 4) {
      b64 += '=';
    }
    var bin = atob(b64);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) {
      out[i] = bin.charCodeAt(i);
    }
    return out.buffer;
  }

  function encode(buf) {
    var bytes = new Uint8Array(buf);
    var bin = '';
    for (var i = 0; i < bytes.length; i++) {
      bin += String.fromCharCode(bytes[i]);
    }
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function descriptors(list) {
    (list || []).forEach(function (c) {
      c.id = decode(c.id);
    });
  }

  function options() {
    var o = challenge.options.publicKey;
    o.challenge = decode(o.challenge);
    if (challenge.mode === 'create') {
      o.user.id = decode(o.user.id);
      descriptors(o.excludeCredentials);
    } else {
      descriptors(o.allowCredentials);
    }
    return o;
  }

  function serialize(cred) {
    var r = cred.response;
    var out = {
      id: cred.id,
      rawId: encode(cred.rawId),
      type: cred.type,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: { clientDataJSON: encode(r.clientDataJSON) }
    };
    if (cred.authenticatorAttachment) {
      out.authenticatorAttachment = cred.authenticatorAttachment;
    }
    if (r.attestationObject) {
      out.response.attestationObject = encode(r.attestationObject);
      if (r.getTransports) {
        out.response.transports = r.getTransports();
      }
    } else {
      out.response.authenticatorData = encode(r.authenticatorData);
      out.response.signature = encode(r.signature);
      if (r.userHandle) {
        out.response.userHandle = encode(r.userHandle);
      }
    }
    return JSON.stringify(out);
  }

  start.addEventListener('click', function () {
    start.disabled = true;
    status.textContent = box.getAttribute('data-waiting');
    var o = options();
    var p = challenge.mode === 'create' ?
      navigator.credentials.create({ publicKey: o }) :
      navigator.credentials.get({ publicKey: o });
    p.then(function (cred) {
      form.elements.credential.value = serialize(cred);
      form.submit();
    }).catch(function (err) {
      form.elements.webauthn_error.value = (err && err.name) || 'Error';
      form.submit();
    });
  });
})();
