# expect: 3: ModuleNotFoundError: No module named 'no_such_package_anywhere'
from airstep import DAG
import no_such_package_anywhere

with DAG("never"):
    pass
