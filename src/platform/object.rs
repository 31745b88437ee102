//! One typed client for the Worker's Durable Objects. A protocol names its class and its op
//! type, so an op can only be sent to an object that understands it; JSON answers travel over
//! RPC (a text in, a text out: no HTTP request or response built on either side, see
//! `.ci/entry.mjs`), an answer that is a response of its own (an event stream) over `fetch`.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;
use worker::js_sys::Promise;
use worker::wasm_bindgen::prelude::*;
use worker::wasm_bindgen_futures::JsFuture;
use worker::{Env, Method, Request, RequestInit, Response};

use crate::http::error::ApiError;
use crate::platform::instance::{Class, Instance};

/// What a Durable Object class understands.
pub trait Protocol {
    const CLASS: Class;
    type Op: Serialize;
}

#[wasm_bindgen(wasm_bindgen = ::worker::wasm_bindgen)]
extern "C" {
    /// A stub, seen through the two methods every object of ours has.
    type ObjectStub;

    /// `call(op: string): Promise<string>`: the objects' RPC method.
    #[wasm_bindgen(method, js_name = call)]
    fn call(this: &ObjectStub, op: &str) -> Promise;

    #[wasm_bindgen(method, js_name = fetch)]
    fn fetch(this: &ObjectStub, req: &worker::web_sys::Request) -> Promise;
}

pub struct DoClient<P: Protocol> {
    stub: ObjectStub,
    class: Class,
    protocol: PhantomData<P>,
}

impl<P: Protocol> DoClient<P> {
    pub fn get(env: &Env, instance: &Instance) -> Result<Self, ApiError> {
        let class = instance.class();
        if class != P::CLASS {
            return Err(ApiError::internal(format!(
                "{instance:?} is not an instance of {:?}",
                P::CLASS
            )));
        }
        let stub = env
            .durable_object(class.binding())
            .and_then(|ns| ns.get_by_name(&instance.name()))
            .map_err(|e| fail(class, e))?
            .into_rpc();
        Ok(DoClient {
            stub,
            class,
            protocol: PhantomData,
        })
    }

    /// An op answered with JSON.
    pub async fn call<T: DeserializeOwned>(&self, op: &P::Op) -> Result<T, ApiError> {
        let body = serde_json::to_string(op).map_err(ApiError::internal)?;
        let answer = JsFuture::from(self.stub.call(&body))
            .await
            .map_err(|e| fail(self.class, e.into()))?;
        let text = answer
            .as_string()
            .ok_or_else(|| fail(self.class, "a non-text answer".into()))?;
        serde_json::from_str(&text).map_err(ApiError::internal)
    }

    /// An op whose answer is a response of its own.
    pub async fn fetch(&self, op: &P::Op) -> Result<Response, ApiError> {
        let body = serde_json::to_string(op).map_err(ApiError::internal)?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_body(Some(body.into()));
        let req =
            Request::new_with_init("https://object/", &init).map_err(|e| fail(self.class, e))?;
        let answer = JsFuture::from(self.stub.fetch(req.inner()))
            .await
            .map_err(|e| fail(self.class, e.into()))?;
        let response: worker::web_sys::Response =
            answer.dyn_into().map_err(|e| fail(self.class, e.into()))?;
        Ok(response.into())
    }
}

fn fail(class: Class, e: worker::Error) -> ApiError {
    ApiError::internal(format!("{} object: {e}", class.binding()))
}

/// Gives a Durable Object class the RPC method `call` that `DoClient::call` uses: a JSON op in,
/// a JSON answer out, from the class's `async fn rpc(&self, op: &str) -> worker::Result<String>`.
/// (`.ci/entry.mjs` makes the exported class a `DurableObject`, which is what allows RPC.)
// Unformatted: rustfmt re-indents the attribute below on every run (not idempotent in a macro).
#[rustfmt::skip]
macro_rules! rpc_method {
    ($class:ident) => {
        const _: () = {
            use worker::wasm_bindgen::prelude::*;

            #[wasm_bindgen(
                wasm_bindgen = ::worker::wasm_bindgen,
                wasm_bindgen_futures = ::worker::wasm_bindgen_futures,
                js_sys = ::worker::js_sys
            )]
            impl $class {
                pub async fn call(&self, op: String) -> Result<JsValue, JsValue> {
                    std::panic::AssertUnwindSafe(async move {
                        self.rpc(&op)
                            .await
                            .map(|answer| JsValue::from_str(&answer))
                            .map_err(JsValue::from)
                    })
                    .await
                }
            }
        };
    };
}
pub(crate) use rpc_method;
