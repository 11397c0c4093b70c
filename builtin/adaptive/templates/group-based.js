// Group-based access and second factor
// Refuse users outside the allowed groups, and ask members of the
// privileged groups for a second factor (step 2).

var allowedGroups = ['employees', 'contractors'];
var privilegedGroups = ['ops'];

/** @type {LatchLoginHandler} */
var onLoginRequest = function (context) {
    executeStep(1, {
        onSuccess: function (context) {
            var user = context.steps[1].subject;
            if (!isMemberOfAnyOfGroups(user, allowedGroups)) {
                sendError(null, {'status': 'Access denied', 'i18nkey': 'login.group.denied'});
                return;
            }
            if (isMemberOfAnyOfGroups(user, privilegedGroups)) {
                executeStep(2);
            }
        }
    });
};
