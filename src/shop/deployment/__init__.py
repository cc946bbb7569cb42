"""shop's services mode on one machine: the plan (:mod:`.plan`) and the supervisor that
starts it (:mod:`.supervisor`), behind ``python -m shop services`` (``make run-services``)."""
