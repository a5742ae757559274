//! Importing the WSGI application named on the command line.

use pyo3::prelude::*;
use pyo3::types::PyList;

/// Imports `module[:callable]` (the callable defaults to `application`, the name mod_wsgi and
/// gunicorn look for) with the working directory first on `sys.path`, as gunicorn and uWSGI put
/// it. The error is Python's, with its traceback printed to stderr (paddock's log).
pub(crate) fn load(py: Python<'_>, target: &str) -> Result<Py<PyAny>, String> {
    let (module, callable) = target.split_once(':').unwrap_or((target, "application"));
    if module.is_empty() || callable.is_empty() {
        return Err("expected MODULE or MODULE:CALLABLE".into());
    }
    let found = (|| -> PyResult<Bound<'_, PyAny>> {
        let path = py.import("sys")?.getattr("path")?.cast_into::<PyList>()?;
        path.insert(0, "")?;
        let mut object = py.import(module)?.into_any();
        for name in callable.split('.') {
            object = object.getattr(name)?;
        }
        Ok(object)
    })();
    match found {
        Ok(app) if app.is_callable() => Ok(app.unbind()),
        Ok(app) => Err(format!(
            "`{callable}` is a {}, not callable",
            type_name(&app)
        )),
        Err(e) => {
            let message = e.to_string();
            e.print(py);
            Err(message)
        }
    }
}

/// The name of `object`'s type, for error messages.
pub(crate) fn type_name(object: &Bound<'_, PyAny>) -> String {
    object
        .get_type()
        .name()
        .map(|name| name.to_string())
        .unwrap_or_else(|_| "object".into())
}
