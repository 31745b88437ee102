//! One upstream call's abort, reachable from everything that may end it: the request's own
//! signal (the platform fires it when the client disconnects, with `enable_request_signal`),
//! a stream whose reader has gone, an error. Whoever comes first aborts; the rest do nothing.

use std::cell::RefCell;
use std::rc::Rc;

use worker::js_sys::{Function, Promise};
use worker::wasm_bindgen::closure::Closure;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::{AbortController, AbortSignal};

#[derive(Clone)]
pub struct Abort {
    controller: Rc<RefCell<Option<AbortController>>>,
    signal: AbortSignal,
}

impl Default for Abort {
    fn default() -> Self {
        let controller = AbortController::default();
        let signal = controller.signal();
        Abort {
            controller: Rc::new(RefCell::new(Some(controller))),
            signal,
        }
    }
}

/// Keeps a callback alive while it may still be called; when dropped it is unhooked first.
pub struct Hook {
    target: Option<web_sys::AbortSignal>,
    _closure: Closure<dyn FnMut(JsValue)>,
}

impl Drop for Hook {
    fn drop(&mut self) {
        if let Some(t) = &self.target {
            t.set_onabort(None);
        }
    }
}

impl Abort {
    /// The signal the upstream fetch runs under.
    pub fn signal(&self) -> &AbortSignal {
        &self.signal
    }

    pub fn abort(&self) {
        if let Some(c) = self.controller.borrow_mut().take() {
            c.abort();
        }
    }

    fn closure(&self) -> Closure<dyn FnMut(JsValue)> {
        let me = self.clone();
        Closure::new(move |_: JsValue| me.abort())
    }

    /// Aborts when `signal` does (the incoming request's, when its client leaves).
    pub fn follow(&self, signal: web_sys::AbortSignal) -> Hook {
        let closure = self.closure();
        if signal.aborted() {
            self.abort();
        }
        signal.set_onabort(Some(closure.as_ref().unchecked_ref::<Function>()));
        Hook {
            target: Some(signal),
            _closure: closure,
        }
    }

    /// Aborts when `gone` rejects (a stream writer's `closed`: its reader has left).
    pub fn on_rejection(&self, gone: &Promise) -> Hook {
        let closure = self.closure();
        let _ = gone.catch(&closure);
        Hook {
            target: None,
            _closure: closure,
        }
    }
}
