"""R2R as an Onyx document index (write-only mirror, or the primary index).

The modules here import nothing from Onyx except ``r2r_index`` and
``factory_hooks`` (only importable inside an Onyx checkout): ``policy``,
``filters``, ``chunk_mapping``, ``flags`` and ``index_core`` read Onyx's objects by
attribute name, so CI tests them without Onyx.  Keep this file free of imports.
"""
