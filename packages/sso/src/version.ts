/** Version of @plugboard/sso; the built-in providers report it (a test keeps it equal to package.json). */
export const SSO_VERSION = '0.1.0';
