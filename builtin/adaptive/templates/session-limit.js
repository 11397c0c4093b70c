// Concurrent-session limit
// After step 1, refuse the login when the user already has the maximum
// number of active sessions, unless the user chooses to end the oldest
// ones through the session-selection prompt.

var maxSessions = 3;

/** @type {LatchLoginHandler} */
var onLoginRequest = function (context) {
    executeStep(1, {
        onSuccess: function (context) {
            var user = context.currentKnownSubject;
            if (isWithinSessionLimit(user, {'MaxSessionCount': maxSessions})) {
                return;
            }
            var sessions = getUserSessions(user);
            sessions.sort(function (a, b) { return a.lastAccessTime - b.lastAccessTime; });
            var offered = [];
            for (var i = 0; i < sessions.length; i++) {
                offered.push({'id': sessions[i].id, 'ip': sessions[i].ip, 'browser': sessions[i].userAgent.browser,
                    'lastAccessTime': sessions[i].lastAccessTime});
            }
            prompt('sessionSelection', {'sessions': offered, 'maxSessions': maxSessions}, {
                onSuccess: function (context, answers) {
                    var chosen = answers.terminate || [];
                    if (sessions.length - chosen.length >= maxSessions) {
                        fail({'errorCode': 'access_denied', 'errorMessage': 'too many active sessions'});
                        return;
                    }
                    for (var j = 0; j < chosen.length; j++) {
                        terminateUserSession(user, chosen[j]);
                    }
                },
                onFail: function (context) {
                    fail({'errorCode': 'access_denied', 'errorMessage': 'too many active sessions'});
                }
            });
        }
    });
};
