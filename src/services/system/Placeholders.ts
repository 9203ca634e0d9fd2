/**
 * Launch placeholders: `{name}` in a launch's executable, args, cwd and env values is replaced by the
 * host's value for `name`. One substitution for components and broker backends alike.
 */

/** Replaces every `{name}` whose `name` is a key of `values`; other braces are left as written. */
export const substitutePlaceholders = (text: string, values: Readonly<Record<string, string>>): string =>
  text.replace(/\{([a-z_]+)\}/g, (match, name: string) => Object.hasOwn(values, name) ? values[name] ?? match : match)
