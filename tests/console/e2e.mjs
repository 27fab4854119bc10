// The console in a real browser: Debian's headless Chromium driven by playwright-core. Run by
// tests/console_browser.rs with one argument, a JSON file: {base, password, csr_file, lang,
// shots, suffix, out}. Writes {serial, pem} to `out`; throws (exit 1) at the first thing that is
// not as expected.
import { chromium } from "playwright-core";
import { createHmac } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const cfg = JSON.parse(readFileSync(process.argv[2], "utf8"));
const zh = cfg.lang === "zh-CN";

function check(ok, what) {
  if (!ok) throw new Error(`not as expected: ${what}`);
}

function base32(s) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0, value = 0;
  const out = [];
  for (const c of s) {
    value = (value << 5) | alphabet.indexOf(c);
    bits += 5;
    if (bits >= 8) { bits -= 8; out.push((value >> bits) & 255); value &= (1 << bits) - 1; }
  }
  return Buffer.from(out);
}

// RFC 6238 with SHA-1, 6 digits, 30 s; `offset` steps from now.
function totp(secret, offset = 0) {
  const step = Math.floor(Date.now() / 1000 / 30) + offset;
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const mac = createHmac("sha1", secret).update(msg).digest();
  const o = mac[mac.length - 1] & 15;
  const code = ((mac[o] & 127) << 24 | mac[o + 1] << 16 | mac[o + 2] << 8 | mac[o + 3]) % 1000000;
  return String(code).padStart(6, "0");
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  // launch() gives Chromium a fresh temporary profile of its own (it refuses --user-data-dir).
});

async function session() {
  const context = await browser.newContext({
    locale: cfg.lang, extraHTTPHeaders: { "Accept-Language": cfg.lang },
    viewport: { width: 1200, height: 900 },
  });
  return { context, page: await context.newPage() };
}

async function shot(page, name) {
  await page.screenshot({ path: join(cfg.shots, `${name}-${cfg.lang}.png`), fullPage: name !== "audit" });
}

async function login(page, name, code = "") {
  await page.goto(`${cfg.base}/`);
  check(page.url().endsWith("/login"), "/ sends to /login");
  await page.fill("#name", name);
  await page.fill("#password", cfg.password);
  if (code) await page.fill("#totp", code);
  await page.click("#login");
}

async function enrol(page, name) {
  await login(page, name);
  check(page.url().endsWith("/enrol"), `${name} is asked to enrol`);
  const secret = base32((await page.textContent("#totp-secret")).trim());
  check(await page.locator("#qr svg").count() === 1, "a QR code");
  await shot(page, "enrol");
  await page.fill("#totp", totp(secret));
  await page.click("#enrol");
  check(!page.url().endsWith("/enrol"), `${name} enrolled`);
  return secret;
}

const s = cfg.suffix;
const result = {};

// The clerk: logs in, registers a subscriber (a name that is a script), uploads a CSR.
{
  const { context, page } = await session();
  await page.goto(`${cfg.base}/login`);
  await shot(page, "login");
  await login(page, `clerk${s}`);
  await page.goto(`${cfg.base}/subscribers`);
  await page.fill("#name", `<script>window.pwned=1</script>${s}`);
  await page.fill("#doc_type", "national-id");
  await page.fill("#number", `11010119900307${s}`);
  await page.fill("#issuer", zh ? "北京市公安局" : "Public Security Bureau");
  await page.fill("#valid_until", "2099-12-31");
  await shot(page, "subscribers");
  await page.click("#register-button");
  check(/\/subscribers\/sub_/.test(page.url()), "registered");
  check((await page.textContent("#subscriber-name")).includes("<script>"), "the name shows as text");
  check(await page.evaluate(() => window.pwned === undefined), "the script did not run");
  await page.setInputFiles("#csr-file", cfg.csr_file);
  await page.waitForFunction(() => document.getElementById("csr").value.includes("BEGIN"));
  await page.selectOption("#profile", "person-signing");
  await shot(page, "subscriber");
  await page.click("#submit-button");
  check(/\/requests\/req_/.test(page.url()),
    `submitted: ${await page.locator("#error").textContent().catch(() => page.url())}`);
  result.request = page.url();
  check(await page.locator("#cannot-approve").count() === 1, "the clerk is told why not");
  check(await page.locator("#approve").count() === 0, "no approve button for the clerk");
  await shot(page, "request");
  await context.close();
}

// The approver: password and TOTP, the queue, approves.
{
  const { context, page } = await session();
  const secret = await enrol(page, `approver${s}`);
  await page.goto(`${cfg.base}/requests?status=pending`);
  await shot(page, "queue");
  await page.goto(result.request);
  await page.click("#approve");
  check((await page.textContent("#request-status")).trim() === (zh ? "已签发" : "issued"), "issued");
  result.serial = (await page.textContent("#request-serial")).trim();
  const pem = await context.request.get(`${cfg.base}/certificates/${result.serial}/pem`);
  check(pem.ok(), "PEM download");
  result.pem = await pem.text();
  // Logout ends the session: the cookie copied before is worthless after.
  const cookies = await context.cookies();
  await page.click("#logout");
  const thief = await browser.newContext();
  await thief.addCookies(cookies);
  const stolen = await thief.newPage();
  await stolen.goto(`${cfg.base}/requests`);
  check(stolen.url().endsWith("/login"), "a stolen cookie does not survive logout");
  await thief.close();
  // A wrong code is refused; the next code works.
  await login(page, `approver${s}`, totp(secret) === "000000" ? "111111" : "000000");
  check(page.url().endsWith("/login") && await page.locator("#error").count() === 1, "wrong TOTP refused");
  await login(page, `approver${s}`, totp(secret, 1));
  check(!page.url().endsWith("/login"), "the next code works");
  // A form posted without its CSRF token is refused.
  const forged = await context.request.post(`${cfg.base}${new URL(result.request).pathname}/reject`,
    { form: { reason: "forged" } });
  check(forged.status() === 403, `POST without CSRF: ${forged.status()}`);
  await context.close();
}

// The attribute authority: an aa operator grants the holder a role under a four-eyes profile and
// is told why they cannot approve it; a second aa operator approves; the AC page shows it.
{
  const { context, page } = await session();
  await enrol(page, `aa${s}`);
  await page.goto(`${cfg.base}/attribute-certificates`);
  await page.fill("#holder_serial", result.serial);
  await page.selectOption("#profile", "application-role-approved");
  await page.fill("#roles", "approver");
  await page.fill("#targets", "permits");
  await page.fill("#not_after", new Date(Date.now() + 30 * 86400e3).toISOString().slice(0, 16));
  await shot(page, "attribute-certificates");
  await page.click("#grant-button");
  check(/\/attribute-grants\/grant_/.test(page.url()),
    `granted: ${await page.locator("#error").textContent().catch(() => page.url())}`);
  check(await page.locator("#cannot-approve").count() === 1, "the granter is told why not");
  check(await page.locator("#approve").count() === 0, "no approve button for the granter");
  result.grant = page.url();
  await context.close();
}
{
  const { context, page } = await session();
  await enrol(page, `aasecond${s}`);
  await page.goto(`${cfg.base}/attribute-grants`);
  await shot(page, "attribute-grants");
  await page.goto(result.grant);
  await page.click("#approve");
  check(/\/attribute-certificates\/[0-9a-f]+$/.test(page.url()), `the AC page opens: ${page.url()}`);
  check((await page.textContent("#ac-status")).trim() === (zh ? "有效" : "valid"), "the AC is valid");
  check((await page.textContent("#ac-holder")).trim() === result.serial, "its holder");
  await shot(page, "attribute-certificate");
  await context.close();
}

// The revoker revokes; the status page says so.
{
  const { context, page } = await session();
  await enrol(page, `revoker${s}`);
  await page.goto(`${cfg.base}/certificates/${result.serial}`);
  await page.selectOption("#reason", "superseded");
  await page.click("#revoke");
  const status = (await page.textContent("#cert-status")).trim();
  check(status.startsWith(zh ? "已吊销" : "revoked"), `revoked: ${status}`);
  await shot(page, "certificate");
  await context.close();
}

// The auditor sees the chain intact.
{
  const { context, page } = await session();
  await login(page, `auditor${s}`);
  await page.goto(`${cfg.base}/audit`);
  await page.click("#verify-chain");
  await page.waitForSelector("#chain");
  const chain = await page.textContent("#chain");
  check(chain.includes(zh ? "完整" : "intact"), `chain: ${chain}`);
  await shot(page, "audit");
  await context.close();
}

await browser.close();
writeFileSync(cfg.out, JSON.stringify(result));
