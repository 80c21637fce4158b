// @ts-check
import js from "@eslint/js";
import { createNodeResolver, importX } from "eslint-plugin-import-x";
import tseslint from "typescript-eslint";
import { noImportCycle } from "./scripts/lint/no-import-cycle.ts";

const PROTOCOLS = ["json", "influx", "otlp", "remote-write"];

/**
 * The folders' boundaries: what a folder may never import. The edge's protocols share what lives
 * beside them (edge/http, edge/publish, shared/), never each other's code.
 */
const ZONES = [
  {
    target: "./worker",
    from: ["./edge", "./functions", "./server"],
    message: "The worker never imports the HTTP edge.",
  },
  {
    target: "./shared",
    from: ["./edge", "./worker", "./server", "./functions"],
    message: "shared/ holds only what the edge and the worker both import; it imports neither.",
  },
  {
    target: "./edge",
    from: ["./functions", "./server"],
    message: "The edge never imports a host.",
  },
  {
    target: ["./edge", "./server", "./worker", "./shared"],
    from: "./edge/http/function-runtime.ts",
    message:
      "Only functions/ use the Netlify entry point; a handler is made from the service context (edge/http/service-context.ts).",
  },
  ...PROTOCOLS.map((protocol) => ({
    target: `./edge/${protocol}`,
    from: PROTOCOLS.filter((other) => other !== protocol).map((other) => `./edge/${other}`),
    message:
      "Protocol folders never import each other: what they share lives in edge/http, edge/publish or shared/.",
  })),
];

export default tseslint.config(
  // shared/gen/ holds generated code only: `npm run generate` writes it, `npm run check:generated`
  // proves it current.
  { ignores: ["node_modules/", ".data/", ".netlify/", ".tools/", "dist/", "shared/gen/"] },
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
    files: ["**/*.ts"],
    plugins: { "import-x": importX, boundaries: { rules: { "no-import-cycle": noImportCycle } } },
    settings: { "import-x/resolver-next": [createNodeResolver()] },
    rules: {
      "boundaries/no-import-cycle": "error",
      "import-x/no-restricted-paths": ["error", { zones: ZONES }],
    },
  },
  {
    files: ["**/*.js"],
    ...tseslint.configs.disableTypeChecked,
  },
);
