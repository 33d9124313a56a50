"""The seed document's core code, verbatim, and a harness that runs it as its program would."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

SEED_CORE_CODE = """\
output_vector1 = np.dot(self.weights_hidden_in, input_vector)
output_vector_hidden = sigmoid(output_vector1)
output_vector2 = np.dot(self.weights_hidden_out, output_vector_hidden)
output_vector_network = sigmoid(output_vector2)

#更新输出层权重
output_errors = -self.target_vec + output_vector_network
tmp = output_errors * output_vector_network * (1.0 - output_vector_network)
tmp = self.learning_rate  * np.dot(tmp, output_vector_hidden.T)
self.weights_hidden_out -= tmp

#更新隐藏层权重
hidden_errors = np.dot(self.weights_hidden_out.T, output_errors)
tmp = hidden_errors * output_vector_hidden * (1.0 - output_vector_hidden)
x = np.dot(tmp, input_vector.T)[:-1,:] #有偏置量
self.weights_hidden_in -= self.learning_rate * x
"""

#: The full program appends the bias node's row of ones to the hidden output (the snippet
#: leaves that line out; without it ``[:-1,:]`` would drop a real hidden unit).
BIAS_NODE_LINE = ("output_vector_hidden = np.concatenate((output_vector_hidden, "
                  "np.ones((1, output_vector_hidden.shape[1]))))")


def run_program_code(code, weights_hidden_in, weights_hidden_out, X_rows, target_vec, learning_rate,
                     sigmoid):
    """Execute ``code`` as the program's ``train()`` body on copies of the weights.

    X_rows is (N, F); with the program's bias node it becomes ``input_vector`` (F+1, N).
    """
    program = SimpleNamespace(weights_hidden_in=weights_hidden_in.copy(),
                              weights_hidden_out=weights_hidden_out.copy(),
                              target_vec=target_vec, learning_rate=learning_rate)
    input_vector = np.concatenate((X_rows, np.ones((X_rows.shape[0], 1))), axis=1).T
    exec(code, {"np": np, "sigmoid": sigmoid}, {"self": program, "input_vector": input_vector})
    return program.weights_hidden_in, program.weights_hidden_out


def run_seed_core_code(weights_hidden_in, weights_hidden_out, X_rows, target_vec, learning_rate,
                       sigmoid):
    """The verbatim snippet, with the full program's bias-node line inserted."""
    lines = SEED_CORE_CODE.splitlines()
    lines.insert(2, BIAS_NODE_LINE)
    return run_program_code("\n".join(lines), weights_hidden_in, weights_hidden_out, X_rows,
                            target_vec, learning_rate, sigmoid)


#: The corrected core code, as the README shows it (bias-node line included).
CORRECTED_CORE_CODE = """\
output_vector1 = np.dot(self.weights_hidden_in, input_vector)
output_vector_hidden = sigmoid(output_vector1)
output_vector_hidden = np.concatenate((output_vector_hidden, np.ones((1, output_vector_hidden.shape[1]))))
output_vector2 = np.dot(self.weights_hidden_out, output_vector_hidden)
output_vector_network = sigmoid(output_vector2)

output_errors = output_vector_network - self.target_vec
output_delta = output_errors * output_vector_network * (1.0 - output_vector_network)
hidden_errors = np.dot(self.weights_hidden_out.T, output_delta)      # before any update
hidden_delta = hidden_errors * output_vector_hidden * (1.0 - output_vector_hidden)
self.weights_hidden_out -= self.learning_rate * np.dot(output_delta, output_vector_hidden.T)
self.weights_hidden_in -= self.learning_rate * np.dot(hidden_delta, input_vector.T)[:-1, :]
"""


def run_corrected_seed_code(weights_hidden_in, weights_hidden_out, X_rows, target_vec, learning_rate):
    """The corrected code, with SciPy's sigmoid."""
    from scipy.special import expit

    return run_program_code(CORRECTED_CORE_CODE, weights_hidden_in, weights_hidden_out, X_rows,
                            target_vec, learning_rate, expit)
