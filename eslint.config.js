// Lint: typescript-eslint's type-checked recommendations. `no-floating-promises` matters most
// here: work left running after a function returns is work the platform may freeze or kill.
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/node_modules/**", "functions/lib/**", "coverage/**", ".spike/**"] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-console": ["error", { allow: ["error"] }],
      // A server object whose request handler refers to it before construction finishes.
      "prefer-const": ["error", { ignoreReadBeforeAssign: true }],
    },
  },
  {
    // vitest's asymmetric matchers (expect.any, expect.stringContaining, …) are typed `any`.
    files: ["**/*.test.ts"],
    rules: {
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-return": "off",
    },
  },
  {
    // Command-line programs (demo, stub CLI, chaos, bench, CI helpers) print to the console.
    files: ["test/**/*.ts", "mobile-client-stub/src/cli.ts", "mobile-client-stub/src/cli/**/*.ts", "ops/cli.ts", ".ci/**/*.mjs"],
    rules: { "no-console": "off" },
  },
  {
    files: ["**/*.js", "**/*.mjs"],
    ...tseslint.configs.disableTypeChecked,
  },
);
