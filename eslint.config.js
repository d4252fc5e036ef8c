// ESLint flat config: typescript-eslint's strict type-checked rules on the libraries and
// apps, a lighter set on tests (which poke at protocol frames as `any` on purpose), and
// eslint-config-prettier last so formatting is Prettier's alone.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'coverage/**', 'apps/chat/public/**'] },
  js.configs.recommended,
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.strictTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // Numbers and booleans in messages read fine; objects and undefined are still caught.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      // `return refuse(...)` in a void function ends a branch in one line; the rule's fix
      // (`return void ...`) says nothing more.
      '@typescript-eslint/no-confusing-void-expression': 'off',
      // Nest modules and test fixtures are classes that exist for their decorators.
      '@typescript-eslint/no-extraneous-class': ['error', { allowWithDecorator: true }],
      // A `!` right after a check the compiler cannot follow (a Map filled a line above)
      // reads better than a branch that cannot run.
      '@typescript-eslint/no-non-null-assertion': 'off',
      // Nest declares option bags (e.g. NestApplicationContextOptions) as classes that are
      // meant to be passed as object literals.
      '@typescript-eslint/no-unsafe-class-instance-assignment': 'off',
    },
  },
  {
    files: ['**/*.spec.ts', 'test/**/*.ts', 'libs/geo-ws/src/testing/**/*.ts', 'libs/geo-ws-client/src/testing/**/*.ts'],
    rules: {
      // Tests read protocol frames as `any` and guard against what a broken server might
      // send, whatever the types say.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unnecessary-condition': 'off',
      '@typescript-eslint/restrict-plus-operands': 'off',
      // Fakes implement async interfaces without awaiting anything.
      '@typescript-eslint/require-await': 'off',
    },
  },
  { files: ['**/*.js', '**/*.mjs'], extends: [tseslint.configs.disableTypeChecked] },
  prettier,
);
