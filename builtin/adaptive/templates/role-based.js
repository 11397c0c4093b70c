// Role-based second factor
// Ask for a second factor (step 2) only when the user who passed step 1
// holds one of the listed roles. Edit rolesNeedingMfa to suit.

var rolesNeedingMfa = ['admin', 'finance-approver'];

/** @type {LatchLoginHandler} */
var onLoginRequest = function (context) {
    executeStep(1, {
        onSuccess: function (context) {
            var user = context.currentKnownSubject;
            if (hasAnyOfTheRoles(user, rolesNeedingMfa)) {
                Log.info('second factor required for ' + user.username);
                executeStep(2);
            }
        }
    });
};
