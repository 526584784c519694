// wrangler.toml's [[rules]] import these two files from swagger-ui-dist as text, so the Worker
// can serve them itself (src/docs/assets.ts).
declare module 'swagger-ui-dist/swagger-ui-bundle.js' {
  const text: string;
  export default text;
}

declare module 'swagger-ui-dist/swagger-ui.css' {
  const text: string;
  export default text;
}
