//! Randomness and PBKDF2 through the runtime's WebCrypto (native code, not a loop in wasm).

use worker::js_sys::{Array, Object, Uint8Array};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{CryptoKey, Pbkdf2Params, SubtleCrypto, WorkerGlobalScope};

use crate::auth::password::HASH_LEN;
use crate::http::error::ApiError;

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // getrandom's `js` backend is crypto.getRandomValues, which cannot fail in workerd.
    getrandom::getrandom(&mut buf).expect("crypto.getRandomValues");
    buf
}

fn subtle() -> Result<SubtleCrypto, ApiError> {
    let global: WorkerGlobalScope = worker::js_sys::global().unchecked_into();
    Ok(global.crypto().map_err(js_err)?.subtle())
}

fn js_err(e: JsValue) -> ApiError {
    ApiError::internal(format!("webcrypto: {e:?}"))
}

pub async fn pbkdf2_sha256(
    password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Result<Vec<u8>, ApiError> {
    let subtle = subtle()?;
    let usages = Array::of1(&JsValue::from_str("deriveBits"));
    let key_data: Object = Uint8Array::from(password).into();
    let key = JsFuture::from(
        subtle
            .import_key_with_str("raw", &key_data, "PBKDF2", false, &usages)
            .map_err(js_err)?,
    )
    .await
    .map_err(js_err)?;
    let salt: Object = Uint8Array::from(salt).into();
    let params = Pbkdf2Params::new_with_str("PBKDF2", "SHA-256", iterations, &salt);
    let key: CryptoKey = key.unchecked_into();
    let bits = JsFuture::from(
        subtle
            .derive_bits_with_object(&params, &key, (HASH_LEN * 8) as u32)
            .map_err(js_err)?,
    )
    .await
    .map_err(js_err)?;
    Ok(Uint8Array::new(&bits).to_vec())
}
