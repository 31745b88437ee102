import os

import requests

# Tạo API key mới
headers = {
    'Authorization': f"Bearer {os.environ['TWINEXPERT_JWT']}",
    'Content-Type': 'application/json'
}

data = {
    'name': 'My App',
    'scope': 'full_access'
}

response = requests.post(
    f"{os.environ['TWINEXPERT_API_URL']}/auth/api-keys",
    headers=headers,
    json=data
)

api_key = response.json()['data']['key']
print(f'API Key: {api_key}')
