// The passkey buttons of the webapp's pages, over package passkey's
// browser client (served at /static/keyhold-passkey.js). Served from the
// app's own origin: the Content-Security-Policy allows no inline script.
import * as passkey from "/static/keyhold-passkey.js";

const status = document.getElementById("passkey-status");

// Elements marked data-passkey="supported" are hidden until we know the
// browser has WebAuthn; "unsupported" ones are hidden once it does.
if (passkey.supported()) {
  for (const el of document.querySelectorAll('[data-passkey="supported"]')) el.hidden = false;
  for (const el of document.querySelectorAll('[data-passkey="unsupported"]')) el.hidden = true;
}

function say(text, isError) {
  if (!status) return;
  status.textContent = text;
  status.className = isError ? "error" : "hint";
}

// run runs one ceremony from a button, then follows the server's answer.
async function run(button, ceremony) {
  button.disabled = true;
  say("Waiting for your passkey…", false);
  try {
    const answer = await ceremony();
    location.assign(answer?.next || "/");
  } catch (e) {
    button.disabled = false;
    if (e instanceof passkey.PasskeyError) {
      let body = null;
      try {
        body = JSON.parse(e.text);
      } catch {
        // not JSON: a proxy's page, say
      }
      if (body?.next && e.status !== 429) {
        location.assign(body.next);
        return;
      }
      say(body?.error ? messageOf(body.error) : "Something went wrong. Please try again.", true);
    } else if (e?.name === "NotAllowedError") {
      say("Cancelled, or no passkey for this site was chosen.", true);
    } else if (e?.name === "InvalidStateError") {
      say("That device already holds a passkey for your account.", true);
    } else {
      say("Your browser could not use a passkey here.", true);
    }
  }
}

function messageOf(error) {
  switch (error) {
    case "sign-in failed":
      return "Sign-in failed. Try again, or log in with your password.";
    case "start again":
      return "That took too long. Please try again.";
    default:
      return error;
  }
}

const on = (id, f) => {
  const el = document.getElementById(id);
  if (el) el.addEventListener("click", () => run(el, f));
};

on("passkey-login", () => passkey.login({ begin: "/passkey/login/begin", finish: "/passkey/login/finish" }));
on("passkey-unlock", () => passkey.unlock({ begin: "/passkey/unlock/begin", finish: "/passkey/unlock/finish" }));
on("passkey-setup", () => passkey.unlock({ begin: "/passkey/unlock/begin", finish: "/passkey/unlock/finish" }));
// The step-up: the session's own user confirms with one of their
// passkeys (the vault stays as it is), then the server's answer says
// where to go: the reauth page's next (checked by the server), or the
// unlock page after a login's second factor.
const stepUp = (next) => {
  const finish = "/passkey/stepup/finish" + (next ? "?next=" + encodeURIComponent(next) : "");
  return passkey.stepUp({ begin: "/passkey/stepup/begin", finish });
};
on("passkey-reauth", () => stepUp(document.getElementById("passkey-reauth").dataset.next || ""));
on("passkey-second-factor", () => stepUp(""));

const add = document.getElementById("passkey-add");
if (add) {
  add.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const name = add.elements.name.value.trim() || "Passkey";
    run(add.querySelector("button"), () =>
      passkey.register({ begin: "/passkey/register/begin", finish: "/passkey/register/finish", name }));
  });
}
