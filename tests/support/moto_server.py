"""Starts moto's AWS-API emulator on loopback for drctl's tests and local drill.

Usage: python3 tests/support/moto_server.py PORT

One fidelity fix: moto 5 keeps ReadReplicaSourceDBInstanceIdentifier on an instance after
promote_read_replica, where RDS removes it (a promoted replica is a standalone primary). drctl
reads exactly that field to know that a promotion happened, so the emulator is corrected here;
nothing else is changed.
"""

import sys

from moto.rds import models
from moto.server import main

_promote = models.RDSBackend.promote_read_replica


def promote_read_replica(self, db_kwargs):
    database = self.databases[db_kwargs["db_instance_identifier"]]
    source_id = database.source_db_instance_identifier
    result = _promote(self, db_kwargs)
    if source_id:
        source = self.databases.get(source_id)
        if source is not None and database.db_instance_identifier in source.replicas:
            source.remove_replica(database)
        database.source_db_instance_identifier = None
    return result


models.RDSBackend.promote_read_replica = promote_read_replica

if __name__ == "__main__":
    main(["-H", "127.0.0.1", "-p", sys.argv[1]])
