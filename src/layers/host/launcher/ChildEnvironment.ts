/** The environment a child starts with: nothing of the host's leaks into it but `PATH`. */

/** The environment a child gets: exactly the host's `PATH` (or a default) plus `env`. */
export const childEnvironment = (env: Readonly<Record<string, string>>): Record<string, string> => ({
  PATH: process.env.PATH ?? "/usr/bin:/bin",
  ...env
})
