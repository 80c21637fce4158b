// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  // shared/gen/ holds generated code only: `npm run generate` writes it, `npm run check:generated`
  // proves it current.
  // public/vendor/ holds third-party builds copied as they are (npm run vendor).
  {
    ignores: [
      "node_modules/",
      ".data/",
      ".netlify/",
      ".tools/",
      "dist/",
      "shared/gen/",
      "public/vendor/",
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Template literals with numbers are how log and error messages are written here.
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
    },
  },
  {
    files: ["**/*.js"],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // The live page's script runs in the browser, with uPlot loaded before it.
    files: ["public/**/*.js"],
    languageOptions: {
      sourceType: "script",
      globals: Object.fromEntries(
        [
          "window",
          "document",
          "fetch",
          "sessionStorage",
          "performance",
          "setInterval",
          "URLSearchParams",
          "uPlot",
        ].map((name) => [name, "readonly"]),
      ),
    },
  },
);
