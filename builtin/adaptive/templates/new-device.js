// New-device second factor
// Remember a device with a signed cookie once the user passed the second
// factor on it; ask for step 2 again when the cookie is missing, belongs
// to another user, or was tampered with.

var deviceCookie = 'latch-known-device';
var rememberDays = 30;

/** @type {LatchLoginHandler} */
var onLoginRequest = function (context) {
    executeStep(1, {
        onSuccess: function (context) {
            var user = context.currentKnownSubject;
            var known = getCookieValue(context.request, deviceCookie, {'validateSignature': true});
            if (known === user.uniqueId) {
                return;
            }
            executeStep(2, {
                onSuccess: function (context) {
                    setCookie(context.response, deviceCookie, user.uniqueId, {
                        'max-age': rememberDays * 24 * 60 * 60,
                        'path': '/',
                        'httpOnly': true,
                        'secure': true,
                        'sameSite': 'Lax',
                        'sign': true
                    });
                }
            });
        }
    });
};
