// Type definitions for Latch adaptive authentication scripts.
//
// Scripts run in Latch's script engine (ECMAScript 5.1 with most of ES2015+),
// not in Node.js or a browser: there is no require, no module system, no
// timers, no DOM and no fetch. Everything a script can use is declared here.
// Reference: docs/adaptive-scripts.md.

/** A claim URI, e.g. "http://wso2.org/claims/emailaddress". */
type ClaimURI = string;

/** A user as a step, a look-up or the context gives it. */
interface LatchUser {
    /** The user's unique id. */
    readonly uniqueId: string;
    /** The login name. */
    readonly username: string;
    /** The user's tenant. */
    readonly tenantDomain: string;
    /** The user store holding the user ("PRIMARY", an LDAP store name, ...). */
    readonly userStoreDomain: string;
    /** Role names, including roles assigned earlier in this login. */
    readonly roles: string[];
    /** Group names. */
    readonly groups: string[];
    /** True for a user asserted by an external identity provider. */
    readonly isFederated: boolean;
    /** Stored claims. Writing one stores it when the login's effects are applied. */
    localClaims: { [uri: string]: string | undefined };
    /** Claims of this login only. */
    claims: { [uri: string]: string | undefined };
    /** Claims sent by a federated identity provider. */
    readonly remoteClaims: { [name: string]: string | undefined };
}

/** What is known about a configured step. */
interface LatchStep {
    /** The user the step authenticated, or null. */
    readonly subject: LatchUser | null;
    /** The Latch id of the authenticator that ran the step ("password", "totp", ...), or null. */
    readonly authenticator: string | null;
    /** "LOCAL" for a local authenticator, the identity provider's name for a federated one, or null. */
    readonly idp: string | null;
    /** Whether the step succeeded (set once the step ran). */
    readonly success?: boolean;
}

/** The request that started the login. */
interface LatchRequest {
    /** The client's address, after the trusted-proxy rules. */
    readonly ip: string;
    /** Headers; names are matched without regard to case. */
    readonly headers: { readonly [name: string]: string | undefined };
    /** Query and form parameters; prompt answers are added here. */
    readonly params: { readonly [name: string]: string[] | undefined };
    /** Cookies by name. */
    readonly cookies: { readonly [name: string]: string | undefined };
}

/** The response of the current request. */
interface LatchResponse {
    /** Writing a header adds it to the response. */
    headers: { [name: string]: string };
}

/** The login's context, passed to onLoginRequest and to every callback. */
interface LatchContext {
    /** Configured steps by number (1-based). */
    readonly steps: { readonly [step: number]: LatchStep };
    /** The number of the step that ran last (0 before any). */
    readonly currentStep: number;
    /** The user of the last successful step, or null. */
    readonly currentKnownSubject: LatchUser | null;
    /** The user of the last successful step, or null. */
    readonly lastAuthenticatedUser: LatchUser | null;
    /** The user whose last attempt failed, when known, or null. */
    readonly lastLoginFailedUser: LatchUser | null;
    /** The acr values the client requested, in its order. */
    readonly requestedAcr: string[];
    /** The acr the login satisfies; set it to choose. */
    selectedAcr: string | null;
    /** The application being logged in to. */
    readonly serviceProviderName: string;
    /** The tenant. */
    readonly tenantDomain: string;
    readonly request: LatchRequest;
    readonly response: LatchResponse;
    /** Extra parameters from the protocol front door. */
    readonly endpointParams: { readonly [name: string]: string | undefined };
}

/** An option of a step: a local authenticator or a federated identity provider. */
type LatchAuthOption = { authenticator: string } | { idp: string };

interface LatchStepOptions {
    /** Narrows the options the step offers. WSO2 names are accepted (BasicAuthenticator, FIDOAuthenticator, ...). */
    authenticationOptions?: LatchAuthOption[];
    /** Parameters for the authenticators. */
    authenticatorParams?: {
        common?: { [key: string]: unknown };
        local?: { [authenticator: string]: { [key: string]: unknown } };
        federated?: { [idp: string]: { [key: string]: unknown } };
    };
    stepOptions?: {
        forceAuth?: 'true' | 'false';
        markAsSubjectIdentifierStep?: 'true' | 'false';
        markAsSubjectAttributeStep?: 'true' | 'false';
    };
}

interface LatchStepCallbacks {
    /** Runs when the step succeeds; may schedule more steps. */
    onSuccess?: (context: LatchContext) => void;
    /** Runs when the step fails. Without it a failure fails the login. */
    onFail?: (context: LatchContext) => void;
}

interface LatchPromptCallbacks {
    /** Runs with the answers by input id (also in context.request.params). */
    onSuccess?: (context: LatchContext, answers: { [id: string]: string[] }) => void;
    /** Runs when the user cancels. Without it (or onSkip) the login fails. */
    onFail?: (context: LatchContext) => void;
    onSkip?: (context: LatchContext) => void;
}

interface LatchHTTPFailure {
    /** The HTTP status, 0 when no answer came. */
    status: number;
    /** Why the call failed (transport error, refused address, too large). */
    error: string;
    body: string;
}

interface LatchHTTPCallbacks {
    /** Runs on a 2xx answer with the parsed JSON body (or the text). */
    onSuccess?: (context: LatchContext, data: any) => void;
    /** Runs on any other outcome. Without it the login fails. */
    onFail?: (context: LatchContext, data: LatchHTTPFailure) => void;
}

interface LatchSession {
    readonly id: string;
    readonly ip: string;
    /** Milliseconds since the Unix epoch. */
    readonly loginTime: number;
    /** Milliseconds since the Unix epoch. */
    readonly lastAccessTime: number;
    readonly userAgent: { raw: string; browser: string; platform: string; device: string };
    readonly applications: { subject: string; appName: string; appId: string }[];
}

interface LatchCookieOptions {
    'max-age'?: number;
    maxAge?: number;
    path?: string;
    domain?: string;
    httpOnly?: boolean;
    secure?: boolean;
    sameSite?: 'Lax' | 'Strict' | 'None';
    /** Encrypt the value (AES-256-GCM under the server's cookie key). */
    encrypt?: boolean;
    /** Sign the value (HMAC-SHA256 under the server's cookie key). */
    sign?: boolean;
}

// ---- Flow control ----

/** Runs configured step `stepId` (1-based). */
declare function executeStep(stepId: number): void;
declare function executeStep(stepId: number, callbacks: LatchStepCallbacks): void;
declare function executeStep(stepId: number, options: LatchStepOptions, callbacks: LatchStepCallbacks): void;
/** Ends the login with an error to the client. errorCode defaults to "access_denied". */
declare function fail(parameters?: { errorCode?: string; errorMessage?: string; errorURI?: string }): void;
/** Ends the login on an error page: `url` null for the built-in page; `params.i18nkey` picks its message. */
declare function sendError(url: string | null, params?: { [key: string]: string }): void;
/** Shows a form (`genericForm` with `inputs: [{id, label}]`, or a template the server defines). */
declare function prompt(templateId: string, data: { [key: string]: unknown }, callbacks: LatchPromptCallbacks): void;
/** Returns the first of `acrs` the client requested, or "". */
declare function selectAcrFrom(context: LatchContext, acrs: string[]): string;
/** Loads a tenant's shared library and returns its module.exports. */
declare function loadLocalLibrary(name: string): any;
/** Reads a tenant secret by alias. */
declare function getSecretByName(alias: string): string;

declare const Log: {
    debug(...message: unknown[]): void;
    info(...message: unknown[]): void;
    warn(...message: unknown[]): void;
    error(...message: unknown[]): void;
};

// ---- Users, roles, groups ----

declare function hasRole(user: LatchUser, role: string): boolean;
declare function hasAnyOfTheRoles(user: LatchUser, roles: string[]): boolean;
/** Like hasAnyOfTheRoles for the context's last authenticated user. */
declare function hasAnyOfTheRolesV2(context: LatchContext, roles: string[]): boolean;
declare function isMemberOfAnyOfGroups(user: LatchUser, groups: string[]): boolean;
/** Assigns roles when the login's effects are applied; visible at once in this login. */
declare function assignUserRoles(user: LatchUser, roles: string[]): boolean;
declare function assignUserRolesV2(context: LatchContext, roles: string[]): boolean;
declare function removeUserRoles(user: LatchUser, roles: string[]): boolean;
declare function removeUserRolesV2(context: LatchContext, roles: string[]): boolean;
/** Masks all but the first and last character. */
declare function getMaskedValue(value: string): string;

// ---- User store look-ups ----

/** The one user whose stored claims hold all the values, or null; throws when several match. */
declare function getUniqueUserWithClaimValues(claims: { [uri: string]: string }, context: LatchContext, profile?: string): LatchUser | null;
/** Every user (at most 100) whose stored claims hold all the values. */
declare function getUsersWithClaimValues(claims: { [uri: string]: string }, context: LatchContext, profile?: string): LatchUser[];
/** A stored claim's value, or null. */
declare function getUserClaimValue(user: LatchUser, claimURI: ClaimURI, profile?: string): string | null;

// ---- Sessions ----

declare function getUserSessions(user: LatchUser): LatchSession[];
/** Ends a session when the login's effects are applied. */
declare function terminateUserSession(user: LatchUser, sessionId: string): boolean;
/** Whether the user has fewer active sessions than MaxSessionCount. */
declare function isWithinSessionLimit(userOrContext: LatchUser | LatchContext, data: { MaxSessionCount?: number; maxSessionCount?: number }): boolean;

// ---- HTTP, cookies, mail, tokens ----

/** Calls an allow-listed URL; the flow resumes in the callbacks. */
declare function httpGet(url: string, callbacks: LatchHTTPCallbacks): void;
declare function httpGet(url: string, headers: { [name: string]: string }, callbacks: LatchHTTPCallbacks): void;
/** Posts to an allow-listed URL: an object body is sent as JSON, a string as is. */
declare function httpPost(url: string, body: unknown, callbacks: LatchHTTPCallbacks): void;
declare function httpPost(url: string, body: unknown, headers: { [name: string]: string }, callbacks: LatchHTTPCallbacks): void;
declare function setCookie(response: LatchResponse, name: string, value: string, options?: LatchCookieOptions): void;
/** The cookie's value, or null when absent, not decryptable or badly signed. */
declare function getCookieValue(request: LatchRequest, name: string, options?: { decrypt?: boolean; validateSignature?: boolean }): string | null;
/** Sends a templated email when the login's effects are applied. */
declare function sendEmail(user: LatchUser, templateId: string, placeholders?: { [key: string]: string }): boolean;
/** A claim of a JWT's payload (isInPayload true, the default) or header. The signature is not checked. */
declare function getValueFromDecodedAssertion(jwt: string, name: string, isInPayload?: boolean): string | null;

// ---- Not available in Latch (they throw with an explanation) ----

/** @deprecated Not available in Latch: call a risk service with httpPost. */
declare function callAnalytics(...args: unknown[]): never;
/** @deprecated Not available in Latch. */
declare function publishToAnalytics(...args: unknown[]): never;
/** @deprecated Not available in Latch. */
declare function callElastic(...args: unknown[]): never;
/** @deprecated Not available in Latch. */
declare function callChoreo(...args: unknown[]): never;
/** @deprecated Not available in Latch: account linking is configured on the identity provider. */
declare function getAssociatedLocalUser(...args: unknown[]): never;
/** @deprecated Not available in Latch. */
declare function doAssociationWithLocalUser(...args: unknown[]): never;
/** @deprecated Not available in Latch. */
declare function removeAssociatedLocalUser(...args: unknown[]): never;
/** @deprecated Not available in Latch. */
declare function updateUserPassword(...args: unknown[]): never;
/** @deprecated Not available in Latch: use authenticationOptions. */
declare function filterAuthenticators(...args: unknown[]): never;
/** @deprecated Not available in Latch: use the identifier_first authenticator. */
declare function promptIdentifierForStep(...args: unknown[]): never;
/** @deprecated Not available in Latch: use getUserSessions(user)[i].applications. */
declare function getAuthenticatedApplications(...args: unknown[]): never;

// ---- What the script defines ----

/**
 * The type of the function a script must define as onLoginRequest (or
 * onInitialRequest). Annotate it to get completion on context:
 *
 *     /** @type {LatchLoginHandler} *\/
 *     var onLoginRequest = function (context) { ... };
 */
type LatchLoginHandler = (context: LatchContext) => void;
