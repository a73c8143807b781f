"""Provider adapters. Importing this package imports every module and package in it; each adapter
registers itself with ``proxyllm.core.provider.register``, so adding a provider is adding a module or a
folder here (nothing else names it)."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
